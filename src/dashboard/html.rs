//! The dashboard's HTML around its content: escaping, Vietnamese number
//! formats, and the page shell — UTF-8, `lang="vi"`, a viewport for phones
//! and one `<style>` block. No script, no font, nothing fetched from
//! elsewhere.

/// `text` safe inside an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A percentage as Vietnamese writes it: `85,3%`, `90%`.
pub fn percent(value: f64) -> String {
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{}%", text.replace('.', ","))
}

/// A count with thousands grouped by dots, as Vietnamese writes them:
/// `12.345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// A whole page: `title` (escaped here) and `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
{body}
</body>
</html>
"#,
        title = escape(title),
    )
}

/// Laptop: the charts beside the lists; phone: one column, the charts
/// scaled to the screen's width by their viewBox.
const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",Arial,sans-serif;color:#17212b;background:#f4f6f8;line-height:1.45;font-size:15px}
header{background:#12395f;color:#fff;padding:14px 20px}
header h1{margin:0;font-size:1.3rem;font-weight:600}
header p{margin:4px 0 0;color:#cfdceb;font-size:.9rem}
header a{color:#cfdceb}
main{max-width:1180px;margin:0 auto;padding:16px}
a{color:#0b5cad}
.period{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:0 0 14px}
.period input{font:inherit;padding:5px 8px;width:9em;border:1px solid #b8c2cc;border-radius:4px}
.period button{font:inherit;padding:5px 12px;border:0;border-radius:4px;background:#12395f;color:#fff}
.period nav a{margin-right:8px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin-bottom:16px}
.card{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .value{font-size:1.7rem;font-weight:650}
.card .label{color:#5b6773;font-size:.85rem}
.card.below .value{color:#b42318}
.grid{display:grid;grid-template-columns:minmax(0,1.1fr) minmax(0,1fr);gap:16px;align-items:start}
section{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08);margin-bottom:16px}
h2{font-size:1.05rem;margin:0 0 10px}
svg.chart{width:100%;height:auto;display:block}
.note{color:#5b6773;font-size:.85rem;margin:6px 0 0}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:5px 6px;border-bottom:1px solid #e8edf2;vertical-align:top}
td.n,th.n{text-align:right;white-space:nowrap}
tfoot td{font-weight:600}
.late{color:#b42318;font-weight:600}
ol.overdue-list{margin:0;padding-left:1.4em}
ol.overdue-list li{margin:0 0 8px}
.meta{display:block;color:#5b6773;font-size:.85rem}
dl.doc-header{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0}
dl.doc-header dt{color:#5b6773}
dl.doc-header dd{margin:0}
.subject{font-size:1.1rem;margin:6px 0 12px}
.wide{overflow-x:auto}
@media (max-width:800px){
 .grid{grid-template-columns:1fr}
 main{padding:10px}
 section{padding:12px}
 body{font-size:14px}
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_html_would_read() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("Hữu Lũng"), "Hữu Lũng");
    }

    #[test]
    fn numbers_as_vietnamese_writes_them() {
        assert_eq!(percent(90.0), "90%");
        assert_eq!(percent(85.34), "85,3%");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(12345), "12.345");
        assert_eq!(count(1234567), "1.234.567");
    }
}
