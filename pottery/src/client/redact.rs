//! Passwords never shown: URLs and error texts with credentials replaced by `***`.

/// `url` with its password, if any, replaced by `***`.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparseable URL>".to_owned();
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
                // A lone userinfo may be a password (some clients read it so): hide it.
                None => format!("{scheme}://***@{host}{path}"),
            }
        }
        None => format!("{scheme}://{authority}{path}"),
    }
}

/// Removes any password that appears in the given URLs from `text`.
pub(super) fn scrub(text: &str, urls: &[String]) -> String {
    let mut out = text.to_owned();
    for url in urls {
        if let Some((_, rest)) = url.split_once("://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
                if !password.is_empty() {
                    out = out.replace(password, "***");
                }
            }
        }
    }
    out
}
