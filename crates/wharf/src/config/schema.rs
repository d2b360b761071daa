//! The shape of distribution's configuration, as `REGISTRY_*` overrides see it.
//!
//! distribution walks its Go structs by reflection and matches each `_`-separated part of an
//! environment variable against the *Go field name* (`Notifications.EventConfig` for yaml
//! `events`, `Health.FileCheckers` for `file`). This table records each yaml key with that Go
//! name and the kind of value below it, so `env.rs` can apply an override to the untyped tree
//! before anything is typed. A test checks it against the keys the typed sections accept.

/// What sits below a key.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A scalar (or a value distribution unmarshals whole, such as a list given as `[a, b]`).
    Leaf,
    /// Free-form `interface{}`: maps nest with lower-cased keys, as distribution creates them.
    Any,
    /// A Go struct: only the listed fields exist.
    Struct(&'static [Field]),
    /// A string-keyed Go map. `shorthand` maps (storage, auth) also accept a bare name,
    /// `REGISTRY_STORAGE=s3`, meaning `{s3: {}}`.
    Map {
        elem: &'static Kind,
        shorthand: bool,
    },
    /// A Go slice, indexed by a number part (`REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL`).
    Seq(&'static Kind),
}

/// One struct field: its yaml key, its Go name (what env vars match) and its kind.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) key: &'static str,
    pub(crate) go: &'static str,
    pub(crate) kind: Kind,
}

impl Field {
    /// True when an env var part names this field, by Go name or yaml key, in any case.
    pub(crate) fn matches(&self, part: &str) -> bool {
        part.eq_ignore_ascii_case(self.go) || part.eq_ignore_ascii_case(self.key)
    }
}

const fn f(key: &'static str, kind: Kind) -> Field {
    Field { key, go: key, kind }
}

const fn g(key: &'static str, go: &'static str, kind: Kind) -> Field {
    Field { key, go, kind }
}

use Kind::{Any, Leaf, Seq, Struct};

const LIST: Kind = Seq(&Leaf);
const HEADERS: Kind = Kind::Map {
    elem: &LIST,
    shorthand: false,
};

const LOG: &[Field] = &[
    g("accesslog", "AccessLog", Struct(&[f("disabled", Leaf)])),
    f("level", Leaf),
    f("formatter", Leaf),
    f(
        "fields",
        Kind::Map {
            elem: &Any,
            shorthand: false,
        },
    ),
    f("hooks", Seq(&Struct(LOG_HOOK))),
    g("reportcaller", "ReportCaller", Leaf),
];

const LOG_HOOK: &[Field] = &[
    f("disabled", Leaf),
    f("type", Leaf),
    f("levels", LIST),
    g(
        "options",
        "MailOptions",
        Struct(&[
            f(
                "smtp",
                Struct(&[
                    f("addr", Leaf),
                    f("username", Leaf),
                    f("password", Leaf),
                    f("insecure", Leaf),
                ]),
            ),
            f("from", Leaf),
            f("to", LIST),
        ]),
    ),
];

const MIDDLEWARE: &[Field] = &[f("name", Leaf), f("disabled", Leaf), f("options", Any)];

const REPORTING: &[Field] = &[
    f(
        "bugsnag",
        Struct(&[
            g("apikey", "APIKey", Leaf),
            f("releasestage", Leaf),
            f("endpoint", Leaf),
        ]),
    ),
    g(
        "newrelic",
        "NewRelic",
        Struct(&[
            f("licensekey", Leaf),
            f("name", Leaf),
            f("verbose", Leaf),
            // wharf's addition: where the OTLP export goes (EU region, tests)
            f("endpoint", Leaf),
        ]),
    ),
];

const HTTP: &[Field] = &[
    f("addr", Leaf),
    f("net", Leaf),
    f("host", Leaf),
    f("prefix", Leaf),
    f("secret", Leaf),
    g("relativeurls", "RelativeURLs", Leaf),
    g("draintimeout", "DrainTimeout", Leaf),
    g("tls", "TLS", Struct(TLS)),
    f("headers", HEADERS),
    f(
        "debug",
        Struct(&[
            f("addr", Leaf),
            f("prometheus", Struct(&[f("enabled", Leaf), f("path", Leaf)])),
        ]),
    ),
    g("http2", "HTTP2", Struct(&[f("disabled", Leaf)])),
    g("h2c", "H2C", Struct(&[f("enabled", Leaf)])),
];

const TLS: &[Field] = &[
    f("certificate", Leaf),
    f("key", Leaf),
    g("clientcas", "ClientCAs", LIST),
    g("clientauth", "ClientAuth", Leaf),
    g("minimumtls", "MinimumTLS", Leaf),
    g("ciphersuites", "CipherSuites", LIST),
    g(
        "letsencrypt",
        "LetsEncrypt",
        Struct(&[
            f("cachefile", Leaf),
            f("email", Leaf),
            f("hosts", LIST),
            g("directoryurl", "DirectoryURL", Leaf),
        ]),
    ),
];

const NOTIFICATIONS: &[Field] = &[
    g(
        "events",
        "EventConfig",
        Struct(&[g("includereferences", "IncludeReferences", Leaf)]),
    ),
    f("endpoints", Seq(&Struct(ENDPOINT))),
];

const ENDPOINT: &[Field] = &[
    f("name", Leaf),
    f("disabled", Leaf),
    g("url", "URL", Leaf),
    f("headers", HEADERS),
    f("timeout", Leaf),
    f("threshold", Leaf),
    f("backoff", Leaf),
    g("ignoredmediatypes", "IgnoredMediaTypes", LIST),
    f(
        "ignore",
        Struct(&[g("mediatypes", "MediaTypes", LIST), f("actions", LIST)]),
    ),
];

/// distribution 2.x keys (`addr`, `pool`) and 3.x go-redis `UniversalOptions` keys, both accepted.
const REDIS: &[Field] = &[
    f("addr", Leaf),
    f("addrs", LIST),
    f("clientname", Leaf),
    f("protocol", Leaf),
    f("username", Leaf),
    f("password", Leaf),
    f("sentinelusername", Leaf),
    f("sentinelpassword", Leaf),
    f("db", Leaf),
    f("maxretries", Leaf),
    f("minretrybackoff", Leaf),
    f("maxretrybackoff", Leaf),
    f("dialtimeout", Leaf),
    f("readtimeout", Leaf),
    f("writetimeout", Leaf),
    f("contexttimeoutenabled", Leaf),
    f("poolfifo", Leaf),
    f("poolsize", Leaf),
    f("pooltimeout", Leaf),
    f("minidleconns", Leaf),
    f("maxidleconns", Leaf),
    f("maxactiveconns", Leaf),
    f("connmaxidletime", Leaf),
    f("connmaxlifetime", Leaf),
    f("maxredirects", Leaf),
    f("readonly", Leaf),
    f("routebylatency", Leaf),
    f("routerandomly", Leaf),
    f("mastername", Leaf),
    f("disableidentity", Leaf),
    f("disableindentity", Leaf),
    f("identitysuffix", Leaf),
    f("unstableresp3", Leaf),
    f(
        "pool",
        Struct(&[
            f("maxidle", Leaf),
            f("maxactive", Leaf),
            f("idletimeout", Leaf),
        ]),
    ),
    g(
        "tls",
        "TLS",
        Struct(&[
            f("enabled", Leaf),
            f("certificate", Leaf),
            f("key", Leaf),
            g("clientcas", "ClientCAs", LIST),
        ]),
    ),
];

const HEALTH: &[Field] = &[
    g(
        "file",
        "FileCheckers",
        Seq(&Struct(&[
            f("file", Leaf),
            f("interval", Leaf),
            f("threshold", Leaf),
        ])),
    ),
    g(
        "http",
        "HTTPCheckers",
        Seq(&Struct(&[
            g("uri", "URI", Leaf),
            f("headers", HEADERS),
            g("statuscode", "StatusCode", Leaf),
            f("timeout", Leaf),
            f("interval", Leaf),
            f("threshold", Leaf),
        ])),
    ),
    g(
        "tcp",
        "TCPCheckers",
        Seq(&Struct(&[
            f("addr", Leaf),
            f("timeout", Leaf),
            f("interval", Leaf),
            f("threshold", Leaf),
        ])),
    ),
    g(
        "storagedriver",
        "StorageDriver",
        Struct(&[
            f("enabled", Leaf),
            f("interval", Leaf),
            f("threshold", Leaf),
        ]),
    ),
];

const PROXY: &[Field] = &[
    g("remoteurl", "RemoteURL", Leaf),
    f("username", Leaf),
    f("password", Leaf),
    f("exec", Struct(&[f("command", Leaf), f("lifetime", Leaf)])),
    g("ttl", "TTL", Leaf),
    g("remotenamespace", "RemoteNamespace", Leaf),
];

const VALIDATION: &[Field] = &[
    f("enabled", Leaf),
    f("disabled", Leaf),
    f(
        "manifests",
        Struct(&[
            g("urls", "URLs", Struct(&[f("allow", LIST), f("deny", LIST)])),
            f(
                "indexes",
                Struct(&[
                    f("platforms", Leaf),
                    g(
                        "platformlist",
                        "PlatformList",
                        Seq(&Struct(&[f("architecture", Leaf), g("os", "OS", Leaf)])),
                    ),
                ]),
            ),
        ]),
    ),
];

/// The whole file, from `Configuration` in distribution's `configuration/configuration.go`.
pub(crate) static ROOT: Kind = Struct(&[
    f("version", Leaf),
    f("log", Struct(LOG)),
    f("loglevel", Leaf),
    f(
        "storage",
        Kind::Map {
            elem: &Any,
            shorthand: true,
        },
    ),
    f(
        "auth",
        Kind::Map {
            elem: &Any,
            shorthand: true,
        },
    ),
    f(
        "middleware",
        Kind::Map {
            elem: &Seq(&Struct(MIDDLEWARE)),
            shorthand: false,
        },
    ),
    f("reporting", Struct(REPORTING)),
    g("http", "HTTP", Struct(HTTP)),
    f("notifications", Struct(NOTIFICATIONS)),
    f("redis", Struct(REDIS)),
    f("health", Struct(HEALTH)),
    f("catalog", Struct(&[g("maxentries", "MaxEntries", Leaf)])),
    f("proxy", Struct(PROXY)),
    f(
        "compatibility",
        Struct(&[f(
            "schema1",
            Struct(&[g("signingkeyfile", "TrustKey", Leaf), f("enabled", Leaf)]),
        )]),
    ),
    f("validation", Struct(VALIDATION)),
    f(
        "policy",
        Struct(&[f("repository", Struct(&[f("classes", LIST)]))]),
    ),
    // wharf's own section: the built-in token server
    f("token", Struct(TOKEN)),
    // wharf's own section: OTLP trace export
    f(
        "tracing",
        Struct(&[
            f("enabled", Leaf),
            f("endpoint", Leaf),
            f(
                "headers",
                Kind::Map {
                    elem: &Leaf,
                    shorthand: false,
                },
            ),
            f("servicename", Leaf),
            f("samplingratio", Leaf),
        ]),
    ),
    // wharf's own section: online garbage collection
    f("gc", Struct(GC)),
]);

const GC: &[Field] = &[
    f("enabled", Leaf),
    f("interval", Leaf),
    f("grace", Leaf),
    f("graceperiod", Leaf),
    f("deleteuntagged", Leaf),
    f("dryrun", Leaf),
];

const TOKEN: &[Field] = &[
    f("issuer", Leaf),
    f("service", Leaf),
    f("realm", Leaf),
    f("expiration", Leaf),
    f("refreshexpiration", Leaf),
    f("signingkey", Leaf),
    f("certificate", Leaf),
    f("htpasswd", Leaf),
    f(
        "groups",
        Kind::Map {
            elem: &LIST,
            shorthand: false,
        },
    ),
    f("access", Seq(&Any)),
];

/// The kind at a dotted path such as `notifications.endpoints[0].ignore`, if the schema has it.
#[cfg(test)]
pub(crate) fn kind_at(path: &str) -> Option<&'static Kind> {
    let mut kind = &ROOT;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexed) = match part.find('[') {
            Some(i) => (&part[..i], true),
            None => (part, false),
        };
        kind = match kind {
            Struct(fields) => &fields.iter().find(|f| f.key == name)?.kind,
            Kind::Map { elem, .. } => elem,
            _ => return None,
        };
        if indexed {
            kind = match kind {
                Seq(elem) => elem,
                _ => return None,
            };
        }
    }
    Some(kind)
}
