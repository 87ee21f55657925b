//! [`DatabaseUrl`], a database URL that keeps its password out of logs.

/// A database URL. It may carry a password, so its `Debug` (what a logged or printed
/// configuration shows) hides that part.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with the password of its user info, if any, replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
            return url.clone();
        };
        let authority_end = url[scheme_end..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |at| scheme_end + at);
        let authority = &url[scheme_end..authority_end];
        let Some(at) = authority.rfind('@') else {
            return url.clone();
        };
        match authority[..at].split_once(':') {
            Some((user, _password)) => format!(
                "{}{user}:***{}",
                &url[..scheme_end],
                &url[scheme_end + at..]
            ),
            None => url.clone(),
        }
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::DatabaseUrl;

    #[test]
    fn debug_hides_the_password_only() {
        let cases = [
            (
                "postgres://app:s3cret@db.example.com:5432/auth?sslmode=require",
                "postgres://app:***@db.example.com:5432/auth?sslmode=require",
            ),
            ("postgres://app@db/auth", "postgres://app@db/auth"),
            ("postgres://u:p%40ss@h/d", "postgres://u:***@h/d"),
            ("sqlite://data/auth.db", "sqlite://data/auth.db"),
        ];
        for (url, shown) in cases {
            let url = DatabaseUrl::from(url);
            assert_eq!(url.redacted(), shown);
            assert_eq!(format!("{url:?}"), format!("DatabaseUrl({shown:?})"));
        }
    }
}
