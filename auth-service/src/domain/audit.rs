//! The audit trail's vocabulary: the security events there are ([`EventType`], one list with
//! their dotted names), where a call comes from ([`Origin`]), and an event about to be recorded
//! ([`Event`]). An event never carries a secret: no password, key, token, digest or code, only
//! names, ids, counts and flags.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::User;
use crate::clock::UnixMicros;

/// Declares [`EventType`] and its names from one list: a new kind of event is one line here.
macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Every kind of security event, by its dotted name in the trail.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EventType {
            $($(#[$doc])* $variant,)*
        }

        impl EventType {
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

event_types! {
    /// A right password: a token (and maybe a session) issued.
    LoginSucceeded => "login.succeeded",
    /// A wrong password, an unknown account or an inactive one; counted toward the lockout.
    LoginFailed => "login.failed",
    /// An attempt refused, unchecked, while its account or address waits out a lockout.
    LoginLocked => "login.locked",
    /// The presented credential revoked.
    Logout => "logout",
    /// Every credential of the caller revoked.
    LogoutAll => "logout.all",
    TokenRefreshed => "token.refreshed",
    /// A refreshed-away key came back: its whole chain revoked.
    TokenReuseDetected => "token.reuse_detected",
    /// By the user (old password checked; a wrong one fails) or by an admin's update.
    PasswordChanged => "password.changed",
    UserCreated => "user.created",
    /// Which fields an admin's update changed, by name.
    UserUpdated => "user.updated",
    /// The role, staff or superuser flag changed, each from and to.
    UserRoleChanged => "user.role_changed",
    UserDeactivated => "user.deactivated",
    UserReactivated => "user.reactivated",
    UserDeleted => "user.deleted",
    /// One `import-django`, with its counts.
    UsersImported => "users.imported",
    /// A reset link asked for (whether or not the address has an account: `detail.mailed`).
    PasswordResetRequested => "password.reset_requested",
    /// A password set with a mailed reset link; every credential revoked.
    PasswordReset => "password.reset",
    /// An address verified with a mailed key.
    EmailVerified => "email.verified",
    /// A second factor (TOTP) confirmed, with its recovery codes.
    MfaEnrolled => "mfa.enrolled",
    /// A code (`detail.kind`: `totp` or `recovery`) accepted, at login or to disable the factor.
    MfaUsed => "mfa.used",
    /// A wrong code; counted toward the lockout.
    MfaFailed => "mfa.failed",
    /// The user's own removal of the factor.
    MfaDisabled => "mfa.disabled",
    /// An admin's reset of a user's factor.
    MfaReset => "mfa.reset",
}

impl EventType {
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.name() == name)
    }
}

/// How the action an event records ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Where a call comes from: the client (as [`crate::grpc`] believes it) and the request id
/// the gateway forwards. Console commands have neither.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub client: Option<IpAddr>,
    pub request_id: Option<String>,
}

/// One security event, built by the service and written by `store::audit::record` inside the
/// transaction of the change it records.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    pub outcome: Outcome,
    pub at: UnixMicros,
    /// Who acted: the authenticated caller; none for an anonymous one or the console.
    pub actor_id: Option<i64>,
    /// Whom it concerns.
    pub target_id: Option<i64>,
    pub origin: Origin,
    /// Names, ids, counts and flags: never a secret.
    pub detail: Map<String, Value>,
}

impl Event {
    /// A successful `kind` at `at`, from `origin`, with no actor or target yet.
    pub fn new(kind: EventType, at: UnixMicros, origin: &Origin) -> Self {
        Self {
            kind,
            outcome: Outcome::Success,
            at,
            actor_id: None,
            target_id: None,
            origin: origin.clone(),
            detail: Map::new(),
        }
    }

    pub fn by(mut self, actor_id: i64) -> Self {
        self.actor_id = Some(actor_id);
        self
    }

    pub fn on(mut self, target_id: i64) -> Self {
        self.target_id = Some(target_id);
        self
    }

    /// Done by the user it concerns.
    pub fn by_self(self, user_id: i64) -> Self {
        self.by(user_id).on(user_id)
    }

    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }

    /// Another event of the same call: its time, actor, target and origin, a new kind, no
    /// detail.
    pub fn also(&self, kind: EventType) -> Self {
        Self {
            kind,
            outcome: self.outcome,
            at: self.at,
            actor_id: self.actor_id,
            target_id: self.target_id,
            origin: self.origin.clone(),
            detail: Map::new(),
        }
    }

    /// The events an admin's update of `before` into `after` makes, given `base` (the update's
    /// actor, target, origin and time): `user.updated` with the names of the fields that
    /// changed, then `password.changed`, `user.role_changed`, `user.deactivated` or
    /// `user.reactivated` where they apply. Nothing changed, nothing recorded.
    pub fn of_user_update(
        base: &Event,
        before: &User,
        after: &User,
        new_password: bool,
    ) -> Vec<Self> {
        let mut fields: Vec<&str> = [
            ("username", before.username != after.username),
            ("email", before.email != after.email),
            ("first_name", before.first_name != after.first_name),
            ("last_name", before.last_name != after.last_name),
            ("role", before.role != after.role),
            ("is_staff", before.is_staff != after.is_staff),
            ("is_superuser", before.is_superuser != after.is_superuser),
            ("is_active", before.is_active != after.is_active),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        if new_password {
            fields.push("password");
        }
        if fields.is_empty() {
            return Vec::new();
        }
        let mut events = vec![base.also(EventType::UserUpdated).with("fields", fields)];
        if new_password {
            events.push(base.also(EventType::PasswordChanged).with("by", "admin"));
        }
        let powers = [
            (
                "role",
                Value::from(before.role.as_db()),
                Value::from(after.role.as_db()),
            ),
            ("is_staff", before.is_staff.into(), after.is_staff.into()),
            (
                "is_superuser",
                before.is_superuser.into(),
                after.is_superuser.into(),
            ),
        ];
        let mut role_changed = base.also(EventType::UserRoleChanged);
        for (name, from, to) in powers {
            if from != to {
                role_changed =
                    role_changed.with(name, serde_json::json!({ "from": from, "to": to }));
            }
        }
        if !role_changed.detail.is_empty() {
            events.push(role_changed);
        }
        match (before.is_active, after.is_active) {
            (true, false) => events.push(base.also(EventType::UserDeactivated)),
            (false, true) => events.push(base.also(EventType::UserReactivated)),
            _ => {}
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    #[test]
    fn every_name_is_dotted_distinct_and_read_back() {
        let mut names: Vec<&str> = EventType::ALL.iter().map(|kind| kind.name()).collect();
        for kind in EventType::ALL {
            assert_eq!(EventType::from_name(kind.name()), Some(*kind));
            assert!(kind.name().contains('.') || kind.name() == "logout");
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        assert_eq!(EventType::from_name("login"), None);
    }

    #[test]
    fn an_update_names_the_fields_it_changed_and_its_powers_from_and_to() {
        let base = Event::new(EventType::UserUpdated, UnixMicros(1), &Origin::default())
            .by(1)
            .on(2);
        let before = User::plain(2);
        let mut after = before.clone();
        after.first_name = "Ann".to_owned();
        after.role = Role::Manager;
        after.is_active = false;
        let events = Event::of_user_update(&base, &before, &after, true);
        let kinds: Vec<&str> = events.iter().map(|event| event.kind.name()).collect();
        assert_eq!(
            kinds,
            [
                "user.updated",
                "password.changed",
                "user.role_changed",
                "user.deactivated"
            ]
        );
        assert_eq!(
            Value::Object(events[0].detail.clone()),
            serde_json::json!({ "fields": ["first_name", "role", "is_active", "password"] })
        );
        assert_eq!(
            Value::Object(events[2].detail.clone()),
            serde_json::json!({ "role": { "from": "CLERK", "to": "MANAGER" } })
        );
        assert!(Event::of_user_update(&base, &before, &before, false).is_empty());
    }
}
