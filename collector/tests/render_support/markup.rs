//! Small readers for the renderings: an HTML tag balance check and an RFC 4180 CSV parser.

/// Elements HTML never closes.
const VOID: [&str; 8] = ["meta", "br", "col", "hr", "img", "input", "link", "wbr"];

/// What [`check_html`] saw.
#[derive(Debug, Default)]
pub struct HtmlFacts {
    /// Every tag name opened, in order.
    pub tags: Vec<String>,
    /// The text of each `<style>` element.
    pub styles: Vec<String>,
    /// The inside of every tag (`<...>`), for reference checks.
    pub tag_sources: Vec<String>,
    /// The text outside tags, entities left as written.
    pub text: String,
}

/// Checks that every non-void element is closed in order (SVG `/>` allowed),
/// that `<` in text only ever starts a tag and `&` only starts an entity.
pub fn check_html(doc: &str) -> Result<HtmlFacts, String> {
    let mut facts = HtmlFacts::default();
    let mut stack: Vec<String> = Vec::new();
    let b = doc.as_bytes();
    let mut i = 0;
    let line_of = |pos: usize| doc[..pos].matches('\n').count() + 1;
    while i < b.len() {
        match b[i] {
            b'<' => {
                let end = doc[i..]
                    .find('>')
                    .ok_or_else(|| format!("unclosed tag at line {}", line_of(i)))?
                    + i;
                let inner = &doc[i + 1..end];
                if inner.contains('<') {
                    return Err(format!(
                        "'<' inside a tag at line {}: {inner:?}",
                        line_of(i)
                    ));
                }
                facts.tag_sources.push(inner.to_string());
                if inner.starts_with("!DOCTYPE") || inner.starts_with("!doctype") {
                    // fine
                } else if inner.starts_with("!--") {
                    return Err(format!("comment at line {}", line_of(i)));
                } else if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    match stack.pop() {
                        Some(open) if open == name => {}
                        other => {
                            return Err(format!(
                                "</{name}> at line {} closes {other:?}",
                                line_of(i)
                            ));
                        }
                    }
                } else {
                    let name: String = inner
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect::<String>()
                        .to_ascii_lowercase();
                    if name.is_empty() {
                        return Err(format!("bad tag at line {}: {inner:?}", line_of(i)));
                    }
                    check_attributes(inner).map_err(|e| format!("line {}: {e}", line_of(i)))?;
                    facts.tags.push(name.clone());
                    let self_closing = inner.ends_with('/');
                    if name == "style" {
                        let close = doc[end..].find("</style>").ok_or("unclosed <style>")? + end;
                        facts.styles.push(doc[end + 1..close].to_string());
                        i = close + "</style>".len();
                        continue;
                    }
                    if !self_closing && !VOID.contains(&name.as_str()) {
                        stack.push(name);
                    }
                }
                i = end + 1;
            }
            b'&' => {
                let rest = &doc[i + 1..];
                let semi = rest
                    .find(';')
                    .filter(|&k| k <= 10)
                    .ok_or_else(|| format!("bare '&' at line {}", line_of(i)))?;
                let ent = &rest[..semi];
                let ok = (ent.starts_with('#')
                    && ent[1..].chars().all(|c| c.is_ascii_digit())
                    && ent.len() > 1)
                    || (!ent.is_empty() && ent.chars().all(|c| c.is_ascii_alphanumeric()));
                if !ok {
                    return Err(format!("bad entity &{ent}; at line {}", line_of(i)));
                }
                facts.text.push('&');
                i += 1;
            }
            b'>' => return Err(format!("bare '>' in text at line {}", line_of(i))),
            _ => {
                let next = doc[i..].find(['<', '&', '>']).map_or(b.len(), |k| k + i);
                facts.text.push_str(&doc[i..next]);
                i = next;
            }
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements at the end: {stack:?}"));
    }
    Ok(facts)
}

/// Attribute values must be double-quoted and hold no raw `"`.
fn check_attributes(inner: &str) -> Result<(), String> {
    let mut rest = inner.trim_end_matches('/');
    rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '-');
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(());
        }
        let name_len = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty() {
            return Err(format!("bad attribute in {inner:?}"));
        }
        rest = &rest[name_len..];
        if let Some(after) = rest.strip_prefix('=') {
            let after = after
                .strip_prefix('"')
                .ok_or_else(|| format!("unquoted attribute {name} in {inner:?}"))?;
            let close = after
                .find('"')
                .ok_or_else(|| format!("unterminated attribute {name}"))?;
            rest = &after[close + 1..];
            if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                return Err(format!("junk after attribute {name} in {inner:?}"));
            }
        }
    }
}

/// Parses RFC 4180 text (CRLF records, `"` quoting with doubled quotes, fields may span lines).
/// Strict: a bare LF outside quotes, or a quote inside an unquoted field, is an error.
pub fn parse_csv(s: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                was_quoted = true;
                at_field_start = false;
            }
            '"' => return Err(format!("quote inside an unquoted field after {field:?}")),
            ',' => {
                row.push(std::mem::take(&mut field));
                at_field_start = true;
                was_quoted = false;
            }
            '\r' => {
                if chars.next() != Some('\n') {
                    return Err("CR without LF".into());
                }
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                at_field_start = true;
                was_quoted = false;
            }
            '\n' => return Err(format!("bare LF after {field:?}")),
            c => {
                if was_quoted {
                    return Err(format!("text after a closing quote: {c:?}"));
                }
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    if !row.is_empty() || !field.is_empty() {
        return Err("last record does not end with CRLF".into());
    }
    Ok(rows)
}
