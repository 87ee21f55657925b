//! Each service's schema: its own migrations (`sqlx::migrate!` of its folders, one per backend),
//! with the migrations of the tables service-kit owns spliced in at the versions the service
//! gives them.
//!
//! A database records each migration applied to it by version and by the SHA-384 of its SQL,
//! and refuses to start when one it applied is missing or its text has changed. So a shared
//! migration keeps, in each service, the version its own copy of the file had, and its text
//! (comments too) does not change once a release has applied it.

use std::borrow::Cow;

use sqlx::{
    SqlSafeStr,
    migrate::{Migration, MigrationType, Migrator},
};

use super::Backend;

/// A migration of a table service-kit owns, once per backend: the text of its `.sql` files in
/// `service-kit/migrations/`.
#[derive(Debug, Clone, Copy)]
pub struct SharedMigration {
    /// What the database records of it: what `migrate!` makes of a file name
    /// (`0004_idempotency_keys.sql` gives `idempotency keys`).
    pub description: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// A service's schema, once per backend (their SQL dialects differ in DDL only).
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
    /// Service-kit's migrations, each at its version in the service's history: the version of
    /// the service's file it stands for, which databases migrated before have recorded.
    pub shared: &'static [(i64, SharedMigration)],
}

impl Migrations {
    /// The migrator for `backend`: the service's own migrations and the shared ones, in the
    /// order of their versions.
    ///
    /// # Panics
    ///
    /// When two migrations have one version (a shared one placed on one of the service's own):
    /// a mistake in the service's list, found by the first test that opens its database.
    pub(super) fn for_backend(&self, backend: Backend) -> Migrator {
        let own = match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        };
        let shared = self.shared.iter().map(|&(version, migration)| {
            let sql = match backend {
                Backend::Sqlite => migration.sqlite,
                Backend::Postgres => migration.postgres,
            };
            // As `migrate!` takes a file that does not begin with `-- no-transaction`: a simple
            // migration, run in a transaction, whose checksum is that of its text.
            Migration::new(
                version,
                Cow::Borrowed(migration.description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        });
        // Whole, so that a setting sqlx adds to its migrator is not lost here unseen.
        let Migrator {
            migrations,
            ignore_missing,
            locking,
            no_tx,
            table_name,
            create_schemas,
        } = own;
        let mut all: Vec<Migration> = migrations.iter().cloned().chain(shared).collect();
        all.sort();
        // `Migration`'s equality is that of version and type (an up and a down may share one).
        if let Some(twins) = all.windows(2).find(|pair| pair[0] == pair[1]) {
            panic!(
                "two migrations have version {}: {:?} and {:?}",
                twins[0].version, twins[0].description, twins[1].description
            );
        }
        Migrator {
            migrations: Cow::Owned(all),
            ignore_missing: *ignore_missing,
            locking: *locking,
            no_tx: *no_tx,
            table_name: table_name.clone(),
            create_schemas: create_schemas.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha384};
    use sqlx::{Connection, SqliteConnection};

    use super::*;

    const SHARED: SharedMigration = SharedMigration {
        description: "shared table",
        sqlite: "CREATE TABLE shared (id INTEGER PRIMARY KEY);",
        postgres: "CREATE TABLE shared (id BIGINT PRIMARY KEY);",
    };

    /// A service's own migrations, as `migrate!` would give them: versions 1 and 3.
    fn own() -> &'static Migrator {
        let migration = |version, sql: &'static str| {
            Migration::new(
                version,
                Cow::Borrowed("own"),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        };
        Box::leak(Box::new(Migrator::with_migrations(vec![
            migration(3, "CREATE TABLE third (id INTEGER PRIMARY KEY);"),
            migration(1, "CREATE TABLE first (id INTEGER PRIMARY KEY);"),
        ])))
    }

    fn migrations(shared: &'static [(i64, SharedMigration)]) -> Migrations {
        let own = own();
        Migrations {
            sqlite: own,
            postgres: own,
            shared,
        }
    }

    #[tokio::test]
    async fn a_shared_migration_takes_its_place_in_the_services_history() {
        let migrations = migrations(&[(2, SHARED)]);
        for (backend, sql) in [
            (Backend::Sqlite, SHARED.sqlite),
            (Backend::Postgres, SHARED.postgres),
        ] {
            let migrator = migrations.for_backend(backend);
            let versions: Vec<i64> = migrator.iter().map(|m| m.version).collect();
            assert_eq!(versions, [1, 2, 3]);
            let shared = migrator.iter().find(|m| m.version == 2).unwrap();
            assert_eq!(shared.description, SHARED.description);
            assert_eq!(shared.sql.as_str(), sql);
            assert_eq!(*shared.checksum, *Sha384::digest(sql));
            assert_eq!(migrator.table_name, own().table_name);
        }

        // Every start migrates again: what the first recorded is what the next one expects.
        let mut connection = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        for _start in 0..2 {
            let migrator = migrations.for_backend(Backend::Sqlite);
            migrator.run(&mut connection).await.unwrap();
        }
        sqlx::query("INSERT INTO shared (id) VALUES (1)")
            .execute(&mut connection)
            .await
            .unwrap();
    }

    #[test]
    #[should_panic(expected = "two migrations have version 3")]
    fn a_shared_migration_cannot_take_a_services_version() {
        migrations(&[(3, SHARED)]).for_backend(Backend::Sqlite);
    }
}
