//! `auth-service import-django FILE`: reads a Django dump, checks it ([`crate::dump`]) and has
//! the store write it in one transaction, in `config`'s database (created and migrated as the
//! server does).

use std::path::{Path, PathBuf};

use service_kit::django::{self, DumpError};

use crate::{
    config::Config,
    dump::{NotImported, check_dump},
    server::{StartupError, build_console_accounts},
};

// What `import_django_file` answers with, by the names it always had.
pub use crate::dump::{DjangoDump, ImportReport};

/// `import-django`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ImportDjangoArgs {
    /// The JSON written by `manage.py dumpdata auth.user authtoken.token`; `-` reads standard
    /// input.
    pub file: PathBuf,
    /// Give imported users new ids instead of Django's (needed when an id is held by another
    /// user here).
    #[arg(long)]
    pub new_ids: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    NotImported(#[from] NotImported),
}

/// The `import-django` command: imports `args.file` into `config`'s database and says what it
/// did; the error is a message for the console.
pub async fn import_django_command(config: &Config, args: &ImportDjangoArgs) -> Result<(), String> {
    let (dump, report) = import_django_file(config, &args.file, !args.new_ids)
        .await
        .map_err(|err| err.to_string())?;
    println!(
        "Imported {} users and {} tokens; skipped {} users and {} tokens already there.",
        report.users_imported, report.tokens_imported, report.users_skipped, report.tokens_skipped
    );
    for (model, count) in &dump.ignored {
        println!("Ignored {count} records of {model}.");
    }
    Ok(())
}

/// Reads, checks and imports a dump file (`-`: standard input) in one transaction.
pub async fn import_django_file(
    config: &Config,
    path: &Path,
    keep_ids: bool,
) -> Result<(DjangoDump, ImportReport), ImportError> {
    let dump = check_dump(django::read_dump(path)?, keep_ids).map_err(NotImported::from)?;
    let accounts = build_console_accounts(config).await?;
    let report = accounts.import(&dump, keep_ids).await?;
    Ok((dump, report))
}
