//! The rules of a document's life after sending, as pure functions: which
//! status a recipient may move to from where it stands (edXML status codes,
//! Decree 30), and when a document is frozen.
//!
//! The store's commit calls these inside the transaction that records a
//! change, so the rule and the current status it is checked against cannot
//! drift apart, whatever the engine.
//!
//! ```text
//!            ┌──────────────► 02 rejected (final; reason required)
//!            │          ▲
//!   01 arrived ──► 03 registered ──► 04 assigned ──► 05 in progress ──► 06 completed
//!     │   │            │  │              │                               ▲
//!     │   └────────────┼──┴──────────────┴───────────────────────────────┘
//!     └── (steps may be skipped: any later code is allowed, none earlier)
//!
//!   revoked, updated or replaced by the sender ──► frozen: only 15 agree
//!   or 16 refuse, once
//! ```

use std::fmt;

/// An edXML status code, as the store keeps it (the same numbers as the
/// API's `StatusCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    Arrived = 1,
    Rejected = 2,
    Registered = 3,
    Assigned = 4,
    InProgress = 5,
    Completed = 6,
    Agreed = 15,
    Refused = 16,
}

impl Code {
    pub const ALL: [Code; 8] = [
        Code::Arrived,
        Code::Rejected,
        Code::Registered,
        Code::Assigned,
        Code::InProgress,
        Code::Completed,
        Code::Agreed,
        Code::Refused,
    ];

    pub fn from_number(n: u32) -> Option<Code> {
        Code::ALL.into_iter().find(|c| *c as u32 == n)
    }

    /// The name a clerk types (`registered`), also accepted by the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Code::Arrived => "arrived",
            Code::Rejected => "rejected",
            Code::Registered => "registered",
            Code::Assigned => "assigned",
            Code::InProgress => "in-progress",
            Code::Completed => "completed",
            Code::Agreed => "agreed",
            Code::Refused => "refused",
        }
    }

    /// The Vietnamese term of the clerical rules.
    pub fn vietnamese(self) -> &'static str {
        match self {
            Code::Arrived => "đã đến",
            Code::Rejected => "từ chối tiếp nhận",
            Code::Registered => "đã tiếp nhận",
            Code::Assigned => "phân công xử lý",
            Code::InProgress => "đang xử lý",
            Code::Completed => "hoàn thành",
            Code::Agreed => "đồng ý",
            Code::Refused => "từ chối",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02} {}", *self as u32, self.name())
    }
}

/// Why a document takes no more handling statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frozen {
    Revoked,
    Updated,
    Replaced,
}

impl fmt::Display for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Frozen::Revoked => "revoked",
            Frozen::Updated => "updated",
            Frozen::Replaced => "replaced",
        })
    }
}

/// Where one recipient's copy of a document stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub status: Code,
    pub frozen: Option<Frozen>,
    /// Its 15/16 answer to the freeze, once given.
    pub answer: Option<Code>,
}

/// The codes a recipient may move to from `state`.
pub fn allowed(state: &State) -> Vec<Code> {
    if state.frozen.is_some() {
        return match state.answer {
            None => vec![Code::Agreed, Code::Refused],
            Some(_) => vec![],
        };
    }
    let forward = |from: Code| -> Vec<Code> {
        [
            Code::Registered,
            Code::Assigned,
            Code::InProgress,
            Code::Completed,
        ]
        .into_iter()
        .filter(|c| *c > from)
        .collect()
    };
    match state.status {
        // Returning is possible only before the document is assigned.
        Code::Arrived | Code::Registered => {
            let mut next = vec![Code::Rejected];
            next.extend(forward(state.status));
            next
        }
        Code::Assigned | Code::InProgress => forward(state.status),
        Code::Completed | Code::Rejected | Code::Agreed | Code::Refused => vec![],
    }
}

/// A move the rules refuse: where it stood, what was asked, what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub state: State,
    pub asked: Code,
    pub allowed: Vec<Code>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the status is {}", self.state.status)?;
        if let Some(frozen) = self.state.frozen {
            write!(f, " and the document was {frozen} by its sender")?;
        }
        if let Some(answer) = self.state.answer {
            write!(f, ", answered {answer}")?;
        }
        write!(f, "; {} is not allowed", self.asked)?;
        if self.allowed.is_empty() {
            f.write_str(", and no further change is")
        } else {
            let names: Vec<String> = self.allowed.iter().map(|c| c.to_string()).collect();
            write!(f, "; allowed next: {}", names.join(", "))
        }
    }
}

/// Checks a move from `state` to `asked`.
pub fn check(state: &State, asked: Code) -> Result<(), Refused> {
    let allowed = allowed(state);
    if allowed.contains(&asked) {
        Ok(())
    } else {
        Err(Refused {
            state: *state,
            asked,
            allowed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Code) -> State {
        State {
            status,
            frozen: None,
            answer: None,
        }
    }

    /// Every pair (from, to) of handling codes: allowed exactly when it goes
    /// forward, with 02 only from 01 or 03, and nothing after 02 or 06.
    #[test]
    fn every_transition_is_allowed_or_refused_as_the_rules_say() {
        use Code::*;
        let handling = [
            Arrived, Rejected, Registered, Assigned, InProgress, Completed,
        ];
        let expected = |from: Code, to: Code| -> bool {
            match (from, to) {
                (Rejected | Completed, _) => false,
                (_, Arrived | Agreed | Refused) => false,
                (Arrived | Registered, Rejected) => true,
                (_, Rejected) => false,
                (from, to) => to > from,
            }
        };
        for from in handling {
            for to in Code::ALL {
                let result = check(&state(from), to);
                assert_eq!(result.is_ok(), expected(from, to), "{from} -> {to}");
                if let Err(refused) = result {
                    let text = refused.to_string();
                    assert!(text.contains(&from.to_string()), "{text}");
                }
            }
        }
    }

    #[test]
    fn a_frozen_document_takes_one_answer_and_nothing_else() {
        for frozen in [Frozen::Revoked, Frozen::Updated, Frozen::Replaced] {
            let mut s = State {
                status: Code::Registered,
                frozen: Some(frozen),
                answer: None,
            };
            for code in Code::ALL {
                let ok = matches!(code, Code::Agreed | Code::Refused);
                assert_eq!(check(&s, code).is_ok(), ok, "{frozen} {code}");
            }
            s.answer = Some(Code::Agreed);
            for code in Code::ALL {
                assert!(check(&s, code).is_err());
            }
        }
    }

    #[test]
    fn a_refusal_names_the_status_and_what_may_follow() {
        let refused = check(&state(Code::Assigned), Code::Rejected).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the status is 04 assigned; 02 rejected is not allowed; allowed next: 05 in-progress, 06 completed"
        );
    }
}
