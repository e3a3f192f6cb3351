//! Notebook reprs (`_repr_html_`): a caption and a two-column table, HTML-escaped.

/// `s` with `&`, `<`, `>` and `"` escaped for HTML text and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A table with `caption` and one row per (name, value).
pub fn table(caption: &str, rows: &[(String, String)]) -> String {
    let mut out = format!("<table><caption style=\"text-align:left\"><b>{}</b></caption>", escape(caption));
    for (k, v) in rows {
        out.push_str(&format!("<tr><th style=\"text-align:left\">{}</th><td>{}</td></tr>", escape(k), escape(v)));
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let t = table("a <b>", &[("x".into(), "1 & \"2\"".into())]);
        assert!(t.contains("a &lt;b&gt;") && t.contains("1 &amp; &quot;2&quot;"), "{t}");
    }
}
