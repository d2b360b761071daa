//! `auth.silly`: any `Authorization` header passes, none gets a bearer challenge. For
//! development and for testing clients' challenge handling; it checks nothing.

use http::HeaderMap;

use super::{Access, AccessController, Challenge, Denial, Grant};
use crate::config::SillyAuth;

/// The silly controller: realm and service only shape the challenge.
pub struct Silly {
    realm: String,
    service: String,
}

impl Silly {
    /// From `auth.silly`.
    pub fn new(config: &SillyAuth) -> Silly {
        Silly {
            realm: config.realm.clone(),
            service: config.service.clone(),
        }
    }
}

#[async_trait::async_trait]
impl AccessController for Silly {
    async fn authorize(&self, headers: &HeaderMap, access: &[Access]) -> Result<Grant, Denial> {
        if headers.contains_key(http::header::AUTHORIZATION) {
            return Ok(Grant::default());
        }
        Err(Denial {
            challenge: Challenge::Bearer {
                realm: self.realm.clone(),
                service: self.service.clone(),
                scope: access.to_vec(),
                error: None,
            },
            access: access.to_vec(),
            reason: "no Authorization header",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Action;

    #[tokio::test]
    async fn any_authorization_passes_and_none_is_challenged() {
        let silly = Silly::new(&SillyAuth {
            realm: "silly-realm".into(),
            service: "silly-service".into(),
        });
        let access = [Access::repository(&"a/b".parse().unwrap(), Action::Pull)];
        let mut headers = HeaderMap::new();
        let denial = silly.authorize(&headers, &access).await.unwrap_err();
        assert_eq!(
            denial.challenge.header_value(),
            "Bearer realm=\"silly-realm\",service=\"silly-service\",scope=\"repository:a/b:pull\""
        );
        headers.insert(http::header::AUTHORIZATION, "anything".parse().unwrap());
        assert!(silly.authorize(&headers, &access).await.is_ok());
    }
}
