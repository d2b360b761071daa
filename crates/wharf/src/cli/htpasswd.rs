//! `wharf htpasswd -Bbn USER PASS`: the one htpasswd invocation registry guides use, so that
//! nobody needs Apache's tools or a registry:2 image to create credentials.

use std::io::Write;

/// Apache htpasswd's flags that matter for registry credentials.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Use bcrypt (the only scheme distribution accepts); always on.
    #[arg(short = 'B')]
    bcrypt: bool,
    /// Take the password from the command line.
    #[arg(short = 'b')]
    batch: bool,
    /// Print the line instead of updating a file.
    #[arg(short = 'n')]
    stdout: bool,
    /// bcrypt cost (4 to 31); htpasswd's default is 5.
    #[arg(short = 'C', default_value_t = 5)]
    cost: u32,
    /// User name.
    user: String,
    /// Password (with -b).
    password: Option<String>,
}

/// Prints `user:$2y$...` for the given password.
pub fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.stdout,
        "only -n (print to standard output) is supported; redirect it into your htpasswd file"
    );
    anyhow::ensure!(!args.user.contains(':'), "user names cannot contain ':'");
    let password = match (&args.password, args.batch) {
        (Some(p), true) => p.clone(),
        _ => anyhow::bail!("pass the password on the command line with -b"),
    };
    let _ = args.bcrypt;
    let hash =
        bcrypt::hash_with_result(password, args.cost)?.format_for_version(bcrypt::Version::TwoY);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}:{hash}", args.user)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_verifies_with_bcrypt() {
        let hash = bcrypt::hash_with_result("testpassword", 5)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        assert!(hash.starts_with("$2y$05$"));
        assert!(bcrypt::verify("testpassword", &hash).unwrap());
    }
}
