//! The default singleton name: the type's name in snake_case.

/// `CacheManager` → `cache_manager`, `HTTPClient` → `http_client`, `Config2` → `config2`.
pub fn snake_case(ident: &str) -> String {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let starts_word = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) => p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()),
            };
            if starts_word {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn names() {
        for (ident, name) in [
            ("CacheManager", "cache_manager"),
            ("HTTPClient", "http_client"),
            ("Config", "config"),
            ("SecurityValidator", "security_validator"),
            ("IOError", "io_error"),
            ("Config2", "config2"),
            ("S3Client", "s3_client"),
            ("ABC", "abc"),
            ("already_snake", "already_snake"),
            ("r#Type", "type"),
        ] {
            assert_eq!(snake_case(ident), name, "{ident}");
        }
    }
}
