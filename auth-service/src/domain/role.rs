//! Roles: each one's name and what it allows, written once in one table.

/// What a user is, beside its flags. A new role is a variant here, its row in [`Role::facts`]
/// (the compiler asks for it, and for its proto value in `grpc::convert`), and its place in
/// [`Role::ALL`] (the tests check it); `grpc::convert`'s test holds the rows to the contract's
/// table (`proto::roles`), which the gateway and inventory read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Clerk,
    Manager,
    Admin,
}

/// A role's row in the table.
struct Facts {
    /// How it is stored, imported from Django, logged and shown by the API.
    name: &'static str,
    /// Lists, creates, changes and deletes users (as `is_staff` does, whatever the role).
    manages_users: bool,
}

impl Role {
    /// Every role, in the API's order.
    pub const ALL: [Self; 3] = [Self::Clerk, Self::Manager, Self::Admin];

    /// The table: the only place a role's name and permissions are written.
    const fn facts(self) -> Facts {
        match self {
            Self::Clerk => Facts {
                name: "CLERK",
                manages_users: false,
            },
            Self::Manager => Facts {
                name: "MANAGER",
                manages_users: false,
            },
            Self::Admin => Facts {
                name: "ADMIN",
                manages_users: true,
            },
        }
    }

    pub fn as_db(self) -> &'static str {
        self.facts().name
    }

    pub fn from_db(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_db() == value)
    }

    /// Every role's name, for a message: `CLERK, MANAGER or ADMIN`.
    pub fn listed() -> String {
        let names = Self::ALL.map(Self::as_db);
        match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    pub fn manages_users(self) -> bool {
        self.facts().manages_users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_is_listed_once_under_a_name_of_its_own() {
        for role in Role::ALL {
            assert_eq!(Role::from_db(role.as_db()), Some(role), "{role:?}");
        }
        assert_eq!(Role::listed(), "CLERK, MANAGER or ADMIN");
        assert_eq!(Role::from_db("clerk"), None, "names are matched exactly");
    }
}
