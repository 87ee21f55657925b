//! `auth.v1.Role` for every crate that meets one: what the API calls each role and what it
//! may do, written once. (Auth keeps its own domain roles, held to this table by a test.)

use crate::auth::v1::Role;

/// A role's row in the table.
struct Facts {
    /// As the API, the database and Django's fixtures spell it.
    name: &'static str,
    /// As the dashboard greets it.
    title: &'static str,
    /// Creates, changes, deletes products and adjusts stock (as `is_staff` does).
    writes_products: bool,
    /// Lists, creates, changes and deletes users (as `is_staff` does).
    manages_users: bool,
}

impl Role {
    /// Every role a user can have, in the API's order. UNSPECIFIED is CLERK.
    pub const ASSIGNABLE: [Self; 3] = [Self::Clerk, Self::Manager, Self::Admin];

    /// The table: the one place a role's names and permissions are written.
    const fn facts(self) -> Facts {
        match self {
            Self::Clerk | Self::Unspecified => Facts {
                name: "CLERK",
                title: "Clerk",
                writes_products: false,
                manages_users: false,
            },
            Self::Manager => Facts {
                name: "MANAGER",
                title: "Manager",
                writes_products: true,
                manages_users: false,
            },
            Self::Admin => Facts {
                name: "ADMIN",
                title: "Admin",
                writes_products: true,
                manages_users: true,
            },
        }
    }

    /// As the API spells it: `CLERK`, `MANAGER`, `ADMIN`.
    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// The role the API spelling names, exactly (DRF's choice fields are case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ASSIGNABLE
            .into_iter()
            .find(|role| role.name() == name)
    }

    /// As a greeting names it: `Clerk`, `Manager`, `Admin`.
    pub fn title(self) -> &'static str {
        self.facts().title
    }

    pub fn writes_products(self) -> bool {
        self.facts().writes_products
    }

    pub fn manages_users(self) -> bool {
        self.facts().manages_users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_name_of_its_own_and_unspecified_is_clerk() {
        for role in Role::ASSIGNABLE {
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
        assert_eq!(Role::Unspecified.name(), "CLERK");
        assert_eq!(Role::from_name("admin"), None);
    }
}
