//! The messages the service sends, in plain text: the password reset (as Django's
//! `registration/password_reset_email.html`, which dj-rest-auth sends) and the e-mail
//! confirmation (as allauth's `email_confirmation_message.txt`). Each names the site
//! (`SITE_NAME`) and carries its link; the link is built by the caller from its setting.

use super::Letter;

/// The password reset message for `account` (its username, or else its email), with `link`.
pub fn password_reset(site_name: &str, to: &str, account: &str, link: &str) -> Letter {
    Letter {
        to: to.to_owned(),
        subject: format!("Password reset on {site_name}"),
        body: format!(
            "You're receiving this email because you requested a password reset for your user \
             account at {site_name}.\n\n\
             Please go to the following page and choose a new password:\n\n\
             {link}\n\n\
             Your username, in case you've forgotten: {account}\n\n\
             If you did not ask for this, you can ignore this message: your password stays as \
             it is.\n\n\
             Thanks for using our site!\n\n\
             The {site_name} team\n"
        ),
    }
}

/// The e-mail confirmation message for `account`, with `link` (which carries the key) and
/// the key itself, for a client that reads it from the message.
pub fn email_confirmation(
    site_name: &str,
    to: &str,
    account: &str,
    link: &str,
    key: &str,
) -> Letter {
    Letter {
        to: to.to_owned(),
        subject: format!("[{site_name}] Please Confirm Your Email Address"),
        body: format!(
            "Hello from {site_name}!\n\n\
             You're receiving this email because user {account} has given your email address \
             to register an account on {site_name}.\n\n\
             To confirm this is correct, go to {link}\n\n\
             (Your confirmation key: {key})\n\n\
             Thank you for using {site_name}!\n"
        ),
    }
}
