"""OPML in and out: subscription lists from and for other feed readers. Pure.

``read_opml_feeds`` lists the feeds of an OPML document: each outline with
an ``xmlUrl``, named by its ``title``/``text``; the folders it sits in (the
outlines around it) and its ``category`` attribute become tags. ``feeds_yaml``
turns them into a ``feeds:`` block to paste into a configuration, and
``write_opml`` writes a configuration's feeds as OPML 2.0, folders from the
first tag.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Final

import yaml

# An OPML file bigger than this is not a subscription list.
MAX_OPML_BYTES: Final = 10 * 1024 * 1024
_TAG_JUNK = re.compile(r"[^\w\- ]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    url: str
    name: str | None
    tags: tuple[str, ...] = ()


class OpmlError(ValueError):
    """Not a readable OPML document; ``str()`` says why."""


def _tag(text: str) -> str:
    """A folder name as a tag: lower case, words joined by dashes."""
    words = _TAG_JUNK.sub(" ", text).split()
    return "-".join(words).lower()


def read_opml_feeds(data: bytes) -> list[OpmlFeed]:
    """The feeds of an OPML document, in document order, without repeats."""
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"larger than {MAX_OPML_BYTES // (1024 * 1024)} MiB")
    try:
        # expat (Python 3.11+) refuses entity-expansion bombs itself; OPML
        # has no use for a DTD, so a document that declares one is refused.
        if b"<!DOCTYPE" in data[:4096].upper():
            raise OpmlError("a DOCTYPE declaration is not allowed in OPML")
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OpmlError(f"not valid XML: {exc}") from None
    if root.tag.lower() != "opml":
        raise OpmlError(f"the root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise OpmlError("no <body> element")
    found: list[OpmlFeed] = []
    seen: set[str] = set()

    def walk(node: ET.Element, folders: tuple[str, ...]) -> None:
        for outline in node.findall("outline"):
            url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
            label = (outline.get("title") or outline.get("text") or "").strip()
            if not url:
                folder = _tag(label)
                walk(outline, folders + ((folder,) if folder else ()))
                continue
            if url in seen:
                continue
            seen.add(url)
            categories = (c.strip().strip("/") for c in (outline.get("category") or "").split(","))
            tags = dict.fromkeys([*folders, *(_tag(c) for c in categories if c.strip("/ "))])
            found.append(OpmlFeed(url, label or None, tuple(t for t in tags if t)))

    walk(body, ())
    return found


def feeds_yaml(feeds: Sequence[OpmlFeed], *, skip_urls: Iterable[str] = ()) -> str:
    """A ``feeds:`` block for the feeds not configured already."""
    known = set(skip_urls)
    entries = []
    for feed in feeds:
        if feed.url in known:
            continue
        entry: dict[str, object] = {"url": feed.url}
        if feed.name:
            entry["name"] = feed.name
        if feed.tags:
            entry["tags"] = list(feed.tags)
        entries.append(entry)
    if not entries:
        return "# every feed of this OPML file is configured already\n"
    text: str = yaml.safe_dump(
        {"feeds": entries}, allow_unicode=True, sort_keys=False, default_flow_style=False
    )
    return text


def write_opml(feeds: Sequence[OpmlFeed], *, title: str, now: datetime) -> bytes:
    """OPML 2.0: feeds in folders named by their first tag, the rest at the top."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent = body
        if feed.tags:
            folder = feed.tags[0]
            parent = folders.get(folder) or ET.SubElement(body, "outline", text=folder)
            folders[folder] = parent
        attrs = {"type": "rss", "text": feed.name or feed.url, "xmlUrl": feed.url}
        if feed.name:
            attrs["title"] = feed.name
        if len(feed.tags) > 1:
            attrs["category"] = ",".join(feed.tags[1:])
        ET.SubElement(parent, "outline", attrs)
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + xml + b"\n"
