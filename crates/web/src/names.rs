//! Display names of uploaded files. They are shown to the user and used for download and
//! archive entry names, never for store keys (those come from ids).

/// The file name a user sees: last path component, no control characters, at most 200
/// characters; `photo` when nothing is left.
pub fn display_name(uploaded: Option<&str>) -> String {
    let raw = uploaded.unwrap_or("");
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(200).collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        "photo".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A name safe on every file system and in a Content-Disposition header: letters, digits,
/// spaces, '.', '-', '_', '(' and ')'; anything else becomes '_'.
pub fn portable_name(display: &str) -> String {
    let safe: String =
        display.chars().map(|c| if c.is_ascii_alphanumeric() || " .-_()".contains(c) { c } else { '_' }).collect();
    let safe = safe.trim().trim_start_matches('.').to_owned();
    if safe.is_empty() {
        "photo".to_owned()
    } else {
        safe
    }
}

/// `name` with its extension replaced by `extension`.
pub fn with_extension(name: &str, extension: &str) -> String {
    let stem = match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    };
    format!("{stem}.{extension}")
}

/// Makes names unique by appending " (2)", " (3)", … before the extension.
pub fn unique_names(names: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .map(|name| {
            let mut candidate = name.clone();
            let mut counter = 2;
            while !seen.insert(candidate.to_lowercase()) {
                candidate = match name.rsplit_once('.') {
                    Some((stem, ext)) => format!("{stem} ({counter}).{ext}"),
                    None => format!("{name} ({counter})"),
                };
                counter += 1;
            }
            candidate
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_lose_paths_and_control_characters() {
        assert_eq!(display_name(Some("C:\\Users\\me\\IMG_0001.JPG")), "IMG_0001.JPG");
        assert_eq!(display_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(display_name(Some("a\u{0}b\nc.jpg")), "abc.jpg");
        assert_eq!(display_name(Some("   ")), "photo");
        assert_eq!(display_name(None), "photo");
        assert_eq!(display_name(Some(".hidden")), "hidden");
    }

    #[test]
    fn archive_names_are_portable_and_unique() {
        assert_eq!(portable_name("Été à Paris/\"1\".jpg"), "_t_ _ Paris__1_.jpg");
        assert_eq!(with_extension("holiday.png", "jpg"), "holiday.jpg");
        assert_eq!(with_extension("noext", "jpg"), "noext.jpg");
        let names = ["a.jpg", "A.jpg", "a.jpg", "b"].map(String::from);
        assert_eq!(unique_names(&names), ["a.jpg", "A (2).jpg", "a (3).jpg", "b"]);
    }
}
