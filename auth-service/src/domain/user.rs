//! The user as the service knows it (never with its password hash) and its role.

use crate::clock::UnixMicros;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Clerk,
    Manager,
    Admin,
}

impl Role {
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Clerk => "CLERK",
            Self::Manager => "MANAGER",
            Self::Admin => "ADMIN",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        match value {
            "CLERK" => Some(Self::Clerk),
            "MANAGER" => Some(Self::Manager),
            "ADMIN" => Some(Self::Admin),
            _ => None,
        }
    }
}

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

impl User {
    /// May list, create, change and delete users.
    pub fn can_manage_users(&self) -> bool {
        self.is_active && (self.is_staff || self.role == Role::Admin)
    }
}
