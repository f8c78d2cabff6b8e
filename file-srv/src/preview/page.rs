//! What a preview takes from a page: its title, description and image, read
//! with `scraper` (an HTML5 parser) — Open Graph tags first, then `<title>` and
//! `<meta name="description">`.

use scraper::{Html, Selector};
use url::Url;

/// Longest title and description kept, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMeta {
    pub title: String,
    pub description: Option<String>,
    /// The page's image, resolved against the page's URL; http(s) only.
    pub image: Option<Url>,
}

/// Reads a page's metadata; `None` when it has no title at all.
pub fn extract(html: &str, page_url: &Url) -> Option<PageMeta> {
    let document = Html::parse_document(html);
    let meta = |attribute: &str, value: &str| -> Option<String> {
        let selector = Selector::parse(&format!("meta[{attribute}=\"{value}\"]")).ok()?;
        document
            .select(&selector)
            .filter_map(|e| e.value().attr("content"))
            .map(tidy)
            .find(|s| !s.is_empty())
    };
    let title_tag = || {
        let selector = Selector::parse("title").ok()?;
        let element = document.select(&selector).next()?;
        Some(tidy(&element.text().collect::<String>())).filter(|s| !s.is_empty())
    };
    let title = meta("property", "og:title").or_else(title_tag)?;
    let description = meta("property", "og:description").or_else(|| meta("name", "description"));
    let image = meta("property", "og:image")
        .and_then(|src| page_url.join(&src).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    Some(PageMeta {
        title: truncate(&title, MAX_TITLE_CHARS),
        description: description.map(|d| truncate(&d, MAX_DESCRIPTION_CHARS)),
        image,
    })
}

/// Collapses runs of whitespace (titles often carry the page's indentation).
fn tidy(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> Option<PageMeta> {
        extract(html, &Url::parse("https://site.example/a/b.html").unwrap())
    }

    #[test]
    fn open_graph_wins_over_title_and_meta_description() {
        let meta = page(
            r#"<html><head><title>Plain</title>
            <meta name="description" content="plain text">
            <meta property="og:title" content="  The   OG title ">
            <meta property="og:description" content="OG text">
            <meta property="og:image" content="/img/cat.png"></head></html>"#,
        )
        .unwrap();
        assert_eq!(meta.title, "The OG title");
        assert_eq!(meta.description.as_deref(), Some("OG text"));
        assert_eq!(meta.image.unwrap().as_str(), "https://site.example/img/cat.png");
    }

    #[test]
    fn falls_back_to_title_and_description_and_refuses_odd_images() {
        let meta = page(
            "<title>\n  Hello &amp; welcome\n</title><meta name=description content=Desc>\
             <meta property=og:image content='javascript:alert(1)'>",
        )
        .unwrap();
        assert_eq!(meta.title, "Hello & welcome");
        assert_eq!(meta.description.as_deref(), Some("Desc"));
        assert_eq!(meta.image, None);
        assert_eq!(page("<p>no title here</p>"), None);
    }

    #[test]
    fn long_texts_are_cut() {
        let long = "x".repeat(1000);
        let meta =
            page(&format!("<title>{long}</title><meta name=description content={long}>")).unwrap();
        assert_eq!(meta.title.chars().count(), MAX_TITLE_CHARS + 1);
        assert_eq!(meta.description.unwrap().chars().count(), MAX_DESCRIPTION_CHARS + 1);
    }
}
