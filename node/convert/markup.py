"""Plain text to the small HTML Mastodon shows, and back (what an editor sends may be either)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCKS = {"p", "br", "div", "li", "h1", "h2", "h3", "h4", "ul", "ol"}


def text_to_html(text: str, hashtags: list[tuple[str, str]]) -> str:
    """Paragraphs of escaped text, then the hashtags as Mastodon marks them up."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    if hashtags:
        links = " ".join(f'<a href="{html.escape(href, quote=True)}" class="mention hashtag" rel="tag">'
                         f"#<span>{html.escape(name)}</span></a>" for name, href in hashtags)  # fmt: skip
        body += f"<p>{links}</p>"
    return body


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n" if tag == "br" else "\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Text of an HTML fragment; a last paragraph made only of hashtags is the node's own and dropped."""
    if "<" not in markup:
        return markup.strip()
    parser = _Text()
    parser.feed(markup)
    parser.close()
    paragraphs = [re.sub(r"[ \t]+", " ", p).strip() for p in re.split(r"\n\s*\n", "".join(parser.parts))]
    paragraphs = [p for p in paragraphs if p]
    if paragraphs and all(w.startswith("#") for w in paragraphs[-1].split()):
        paragraphs.pop()
    return "\n\n".join(paragraphs)
