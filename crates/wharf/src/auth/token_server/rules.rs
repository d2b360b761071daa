//! The `token.access` rules: which actions a requester may have on a repository.
//!
//! Union semantics: every rule whose `match` fits adds its actions; no rule ever takes one
//! away, so rule order does not matter. `account: anonymous` fits every requester (an
//! authenticated user never gets less than an anonymous one), `account: "*"` fits any
//! authenticated user, a name fits that user, `group` fits the group's members. Pure: no I/O.

use std::collections::BTreeMap;

use crate::auth::Action;
use crate::config::{AccessRule, RuleAction};

/// The rules of `token.access` with the groups they refer to.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<AccessRule>,
    groups: BTreeMap<String, Vec<String>>,
}

impl Rules {
    /// Rules as configured; `groups` resolves `match.group`.
    pub fn new(rules: Vec<AccessRule>, groups: BTreeMap<String, Vec<String>>) -> Rules {
        Rules { rules, groups }
    }

    /// The actions `account` (`None`: anonymous) may have on repository `repo`.
    pub fn allowed(&self, account: Option<&str>, repo: &str) -> Vec<Action> {
        let mut out: Vec<Action> = Vec::new();
        for rule in self.rules.iter().filter(|r| self.fits(r, account, repo)) {
            for action in &rule.actions {
                let granted: &[Action] = match action {
                    RuleAction::Pull => &[Action::Pull],
                    RuleAction::Push => &[Action::Push],
                    RuleAction::Delete => &[Action::Delete],
                    RuleAction::All => &[Action::Pull, Action::Push, Action::Delete, Action::All],
                };
                for a in granted {
                    if !out.contains(a) {
                        out.push(*a);
                    }
                }
            }
        }
        out
    }

    fn fits(&self, rule: &AccessRule, account: Option<&str>, repo: &str) -> bool {
        let m = &rule.matches;
        let account_fits = match (m.account.as_deref(), account) {
            (None, _) | (Some("anonymous"), _) => true,
            (Some("*"), user) => user.is_some(),
            (Some(name), Some(user)) => name == user,
            (Some(_), None) => false,
        };
        let group_fits = match (&m.group, account) {
            (None, _) => true,
            (Some(group), Some(user)) => self
                .groups
                .get(group)
                .is_some_and(|members| members.iter().any(|u| u == user)),
            (Some(_), None) => false,
        };
        account_fits && group_fits && glob(&m.repository, repo)
    }
}

/// `*` matches any run of characters (`/` included); everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RuleMatch;

    fn rule(
        account: Option<&str>,
        group: Option<&str>,
        repo: &str,
        actions: &[RuleAction],
    ) -> AccessRule {
        AccessRule {
            matches: RuleMatch {
                account: account.map(str::to_owned),
                group: group.map(str::to_owned),
                repository: repo.to_owned(),
            },
            actions: actions.to_vec(),
        }
    }

    fn rules() -> Rules {
        use RuleAction::*;
        Rules::new(
            vec![
                rule(Some("anonymous"), None, "public/*", &[Pull]),
                rule(Some("*"), None, "*", &[Pull]),
                rule(None, Some("team-a"), "team-a/*", &[Pull, Push]),
                rule(Some("root"), None, "*", &[All]),
                rule(Some("carol"), Some("team-a"), "team-a/secret", &[Delete]),
            ],
            BTreeMap::from([(
                "team-a".to_owned(),
                vec!["alice".to_owned(), "carol".to_owned()],
            )]),
        )
    }

    #[test]
    fn every_matching_rule_adds_its_actions() {
        use Action::*;
        let cases: &[(Option<&str>, &str, &[Action])] = &[
            (None, "public/base", &[Pull]),
            (None, "public", &[]),
            (None, "private/app", &[]),
            (None, "team-a/app", &[]),
            (Some("bob"), "private/app", &[Pull]),
            (Some("bob"), "team-a/app", &[Pull]),
            (Some("alice"), "team-a/app", &[Pull, Push]),
            (Some("alice"), "team-a/deep/app", &[Pull, Push]),
            (Some("alice"), "team-b/app", &[Pull]),
            (Some("alice"), "team-a/secret", &[Pull, Push]),
            (Some("carol"), "team-a/secret", &[Pull, Push, Delete]),
            (Some("root"), "anything/at/all", &[Pull, Push, Delete, All]),
            (Some("anonymous"), "private/app", &[Pull]),
            // the catalog scope asks about the literal pattern `*`
            (Some("root"), "*", &[Pull, Push, Delete, All]),
            (Some("alice"), "*", &[Pull]),
            (None, "*", &[]),
        ];
        let rules = rules();
        for (account, repo, want) in cases {
            let mut got = rules.allowed(*account, repo);
            got.sort_by_key(|a| a.as_str());
            let mut want = want.to_vec();
            want.sort_by_key(|a| a.as_str());
            assert_eq!(got, want, "{account:?} on {repo}");
        }
    }

    #[test]
    fn glob_stars_match_any_run_including_slashes() {
        let cases = [
            ("*", "", true),
            ("*", "a/b", true),
            ("team-a/*", "team-a/x", true),
            ("team-a/*", "team-a/x/y", true),
            ("team-a/*", "team-a", false),
            ("team-a/*", "team-ab/x", false),
            ("*/app", "a/b/app", true),
            ("*/app", "a/b/apps", false),
            ("a*b*c", "aXbYbZc", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob(pattern, text), want, "{pattern} ~ {text}");
        }
    }
}
