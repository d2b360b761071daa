//! nginx as a round-robin load balancer in front of several registries, on a free port of
//! 127.0.0.1, in the foreground, with every file it writes in a temp dir; killed when dropped.
//!
//! Bodies stream both ways (`proxy_request_buffering off`, `proxy_buffering off`, HTTP/1.1 to
//! the upstreams so chunked uploads are not buffered either) and `Host` is passed through, so
//! the `Location` of an upload names the balancer and every request of a push may land on a
//! different registry. The access log records which upstream served each request.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wharf::wait_for_port;
use super::{free_port, require};

/// A running nginx.
pub struct Nginx {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Balances over `upstreams` (`host:port` each); `None` (after printing why) when nginx
    /// is missing on a laptop.
    pub fn start(upstreams: &[String]) -> Option<Nginx> {
        // Debian installs it in /usr/sbin, which is not on a normal user's PATH
        let sbin = PathBuf::from("/usr/sbin/nginx");
        let nginx = match sbin.is_file() {
            true => sbin,
            false => require("nginx")?,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        let servers: String = upstreams
            .iter()
            .map(|u| format!("    server {u} max_fails=1 fail_timeout=30s;\n"))
            .collect();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
events {{ worker_connections 256; }}\n\
http {{\n  log_format upstream '$request_method $uri $status $upstream_addr';\n  access_log {d}/access.log upstream;\n\
  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
  upstream registries {{\n{servers}  }}\n\
  server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size 0;\n    proxy_request_buffering off;\n    proxy_buffering off;\n    proxy_http_version 1.1;\n    proxy_read_timeout 300s;\n\
    location / {{\n      proxy_pass http://registries;\n      proxy_set_header Host $http_host;\n      proxy_set_header Connection \"\";\n      proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("nginx log");
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn nginx");
        let n = Nginx {
            child: Some(child),
            port,
            dir,
        };
        wait_for_port(
            port,
            Duration::from_secs(10),
            &n.dir.path().join("error.log"),
        );
        Some(n)
    }

    /// `host:port` of the balancer, as docker wants it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Base URL of the balancer.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// One line per request: `METHOD URI STATUS UPSTREAM[, UPSTREAM…]`.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// nginx's error log, for failure messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master must take its worker down with it
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            for _ in 0..50 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
