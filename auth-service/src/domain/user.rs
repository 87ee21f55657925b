//! The user as the service knows it (never with its password hash), and its profile: the
//! fields an account is created with and changed by.

use super::{Email, PersonName, Role, Username};
use crate::clock::UnixMicros;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub is_active: bool,
    pub date_joined: UnixMicros,
    pub last_login: Option<UnixMicros>,
}

#[cfg(test)]
impl User {
    /// An active CLERK known by its id alone, for the unit tests of what carries a user.
    pub fn plain(id: i64) -> Self {
        Self {
            id,
            username: None,
            email: None,
            first_name: String::new(),
            last_name: String::new(),
            role: Role::Clerk,
            is_staff: false,
            is_superuser: false,
            is_active: true,
            date_joined: UnixMicros(0),
            last_login: None,
        }
    }
}

impl User {
    /// May list, create, change and delete users.
    pub fn can_manage_users(&self) -> bool {
        self.is_active && (self.is_staff || self.role.manages_users())
    }
}

/// Who a user is and what it may do: every field of an account that sign-up, an admin, the
/// console or an import sets, beside its password. A new field of users goes here (and in
/// [`ProfileChanges`]); the compiler then names every place that sets or stores one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub role: Role,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub is_active: bool,
}

/// A partial change of a [`Profile`]: `None` leaves a field as it is; for username and email,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    pub username: Option<Option<Username>>,
    pub email: Option<Option<Email>>,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub role: Option<Role>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
    pub is_active: Option<bool>,
}

/// Every field set: the change that makes a new user's row.
impl From<Profile> for ProfileChanges {
    fn from(profile: Profile) -> Self {
        Self {
            username: Some(profile.username),
            email: Some(profile.email),
            first_name: Some(profile.first_name),
            last_name: Some(profile.last_name),
            role: Some(profile.role),
            is_staff: Some(profile.is_staff),
            is_superuser: Some(profile.is_superuser),
            is_active: Some(profile.is_active),
        }
    }
}

impl ProfileChanges {
    /// Whether only a superuser may make these changes to a superuser: its activity, staff
    /// flag, role or superuser flag, or what it logs in with (its username and email, which a
    /// password reset by e-mail would trust).
    pub fn touches_superuser_powers(&self) -> bool {
        self.username.is_some()
            || self.email.is_some()
            || self.is_active.is_some()
            || self.is_staff.is_some()
            || self.role.is_some()
            || self.is_superuser.is_some()
    }

    /// Whether the user would be left with neither a username nor an email.
    pub fn clears_identity(&self) -> bool {
        self.username == Some(None) && self.email == Some(None)
    }
}
