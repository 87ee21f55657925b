//! The first admin, created at the console like Django's `manage.py createsuperuser`.

use std::io::BufRead;

use service_kit::validation::FieldErrors;

use crate::{
    config::Config,
    domain::{Email, Password, PersonName, Profile, Role, User, Username, audit::Origin},
    error::AuthError,
    server::{StartupError, build_console_accounts},
    service::NewAccount,
};

#[derive(Debug, thiserror::Error)]
pub enum CreateSuperuserError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The input was refused; the messages say why, field by field.
    #[error("{}", describe(.0))]
    Invalid(FieldErrors),
    #[error("cannot create the user: {0}")]
    Failed(AuthError),
}

fn describe(errors: &FieldErrors) -> String {
    errors
        .iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `createsuperuser`'s arguments, for every binary that offers the command.
#[derive(Debug, clap::Args)]
pub struct CreateSuperuserArgs {
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub email: Option<String>,
}

/// The `createsuperuser` command: reads the password, creates the user in `config`'s database
/// and says so; the error is a message for the console.
pub async fn createsuperuser_command(
    config: &Config,
    args: &CreateSuperuserArgs,
) -> Result<(), String> {
    let password = superuser_password().map_err(|e| e.to_string())?;
    let user = create_superuser(config, &args.username, args.email.as_deref(), &password)
        .await
        .map_err(|e| e.to_string())?;
    println!("Superuser {:?} created (id {}).", args.username, user.id);
    Ok(())
}

/// The superuser's password: `AUTH_SUPERUSER_PASSWORD` if set (for scripts), else the first
/// line of standard input. Set but empty counts as unset, as for every other variable: an
/// empty password could never pass the rules, and a compose file that passes the variable
/// through sets it empty whenever the operator did not.
fn superuser_password() -> std::io::Result<String> {
    if let Ok(password) = std::env::var("AUTH_SUPERUSER_PASSWORD")
        && !password.is_empty()
    {
        return Ok(password);
    }
    eprintln!("Password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Creates a user with role ADMIN, `is_staff` and `is_superuser` in the database of `config`.
/// An existing username (or email) is an error and changes nothing.
pub async fn create_superuser(
    config: &Config,
    username: &str,
    email: Option<&str>,
    password: &str,
) -> Result<User, CreateSuperuserError> {
    let mut errors = FieldErrors::new();
    let username = errors.check("username", Username::parse(username));
    let email = email.map(|e| errors.check("email", Email::parse(e)));
    let password = errors.check("password", Password::parse(password));
    let (Some(username), Some(password), true) = (username, password, errors.is_empty()) else {
        return Err(CreateSuperuserError::Invalid(errors));
    };
    let accounts = build_console_accounts(config).await?;
    let account = NewAccount {
        profile: Profile {
            username: Some(username),
            email: email.flatten(),
            first_name: PersonName::default(),
            last_name: PersonName::default(),
            role: Role::Admin,
            is_staff: true,
            is_superuser: true,
            is_active: true,
        },
        password,
    };
    accounts
        .insert_account(account, "console", &Origin::default())
        .await
        .map_err(|err| match err {
            AuthError::Invalid(errors) => CreateSuperuserError::Invalid(errors),
            other => CreateSuperuserError::Failed(other),
        })
}
