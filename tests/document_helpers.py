"""Documents for the tests, made on the spot: Word, Excel and PowerPoint files with the libraries
that read them, OpenDocument and EPUB files as the ZIPs of XML they are, and hostile ones."""

from __future__ import annotations

import io
import zipfile

SENTENCE = "The harbour bridge opens at dawn."

_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"'
)
_ODF_TYPES = {
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}


def docx(sentence: str = SENTENCE) -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Quarterly review", level=1)
    document.add_paragraph(sentence)
    document.add_heading("Risks", level=2)
    for item in ("supply", "staffing"):
        document.add_paragraph(item, style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for row, values in enumerate((("Region", "Sales"), ("North | East", "10"))):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx(sentence: str = SENTENCE) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Sales"
    for row in (("Region", "Sales", "Share"), ("North", 10, 0.5), ("South", 20, None)):
        sheet.append(row)
    notes = workbook.create_sheet("Notes")
    notes.append([sentence])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def pptx(sentence: str = SENTENCE) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    assert first.shapes.title is not None
    first.shapes.title.text = "Plan"
    body = first.placeholders[1].text_frame
    body.text = "first point"
    nested = body.add_paragraph()
    nested.text, nested.level = "nested point", 1
    second = deck.slides.add_slide(deck.slide_layouts[5])
    assert second.shapes.title is not None
    second.shapes.title.text = "Numbers"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for row, values in enumerate((("Q", "Value"), ("Q1", "5"))):
        for column, value in enumerate(values):
            table.cell(row, column).text = value
    third = deck.slides.add_slide(deck.slide_layouts[1])
    assert third.shapes.title is not None
    third.shapes.title.text = "Outlook"
    third.placeholders[1].text_frame.text = sentence
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def odf(kind: str, body: str, *, encrypted: bool = False) -> bytes:
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS} office:version="1.3">'
        f"<office:body>{body}</office:body></office:document-content>"
    )
    return _zip(
        ("mimetype", _ODF_TYPES[kind], zipfile.ZIP_STORED),
        ("content.xml", content),
        (
            "META-INF/manifest.xml",
            '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:'
            f'xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type='
            f'"{_ODF_TYPES[kind]}"/>'
            + (
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
                '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="x"/>'
                "</manifest:file-entry>"
                if encrypted
                else ""
            )
            + "</manifest:manifest>",
        ),
    )


def odt(sentence: str = SENTENCE, *, encrypted: bool = False) -> bytes:
    return odf(
        "odt",
        encrypted=encrypted,
        body='<office:text><text:h text:outline-level="1">Quarterly review</text:h>'
        f"<text:p>{sentence}</text:p>"
        "<text:list><text:list-item><text:p>supply</text:p></text:list-item>"
        "<text:list-item><text:p>staffing</text:p></text:list-item></text:list>"
        '<table:table table:name="T"><table:table-row><table:table-cell><text:p>Region</text:p>'
        "</table:table-cell><table:table-cell><text:p>Sales</text:p></table:table-cell></table:table-row>"
        "<table:table-row><table:table-cell><text:p>North</text:p></table:table-cell>"
        "<table:table-cell><text:p>10</text:p></table:table-cell></table:table-row></table:table>"
        "</office:text>",
    )


def ods(sentence: str = SENTENCE) -> bytes:
    def row(*cells: str, repeat: int = 1) -> str:
        inner = "".join(f"<table:table-cell><text:p>{c}</text:p></table:table-cell>" for c in cells)
        # Real spreadsheets end rows with one cell repeated to the sheet's last column.
        inner += '<table:table-cell table:number-columns-repeated="16378"/>'
        return f'<table:table-row table:number-rows-repeated="{repeat}">{inner}</table:table-row>'

    return odf(
        "ods",
        '<office:spreadsheet><table:table table:name="Sales">'
        + row("Region", "Sales")
        + row("North", "10")
        + '<table:table-row table:number-rows-repeated="1048570"><table:table-cell '
        'table:number-columns-repeated="16384"/></table:table-row></table:table>'
        f'<table:table table:name="Notes">{row(sentence)}</table:table></office:spreadsheet>',
    )


def odp(sentence: str = SENTENCE) -> bytes:
    def page(name: str, text: str) -> str:
        return (
            f'<draw:page draw:name="{name}"><draw:frame><draw:text-box><text:p>{text}</text:p>'
            "</draw:text-box></draw:frame></draw:page>"
        )

    return odf(
        "odp",
        "<office:presentation>"
        + page("Plan", "first point")
        + page("page2", sentence)
        + "</office:presentation>",
    )


def html(sentence: str = SENTENCE) -> bytes:
    return (
        "<!DOCTYPE html><html><head><title>Report</title><style>p { color: red }</style>"
        "<script>var secret = 'markup';</script></head><body><h1>Quarterly review</h1>"
        f"<p>{sentence}</p><ul><li>supply</li><li>staffing</li></ul></body></html>"
    ).encode()


def csv_file(sentence: str = SENTENCE) -> bytes:
    return f'Region,Sales,Note\nNorth,10,"{sentence}"\n"South, East",20,\n'.encode()


def epub(sentence: str = SENTENCE, *, drm: bool = False) -> bytes:
    def chapter(title: str, text: str) -> str:
        return (
            '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"
        )

    entries: list[tuple[str, str] | tuple[str, str, int]] = [
        ("mimetype", "application/epub+zip", zipfile.ZIP_STORED),
        (
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:'
            'container"><rootfiles><rootfile full-path="OEBPS/book.opf" media-type="application/'
            'oebps-package+xml"/></rootfiles></container>',
        ),
        (
            "OEBPS/book.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
            'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>'
            'The Crossing</dc:title><dc:identifier id="id">x</dc:identifier></metadata><manifest>'
            '<item id="two" href="two.xhtml" media-type="application/xhtml+xml"/>'
            '<item id="one" href="one.xhtml" media-type="application/xhtml+xml"/></manifest>'
            '<spine><itemref idref="one"/><itemref idref="two"/></spine></package>',
        ),
        ("OEBPS/one.xhtml", chapter("Chapter One", "It began in spring.")),
        ("OEBPS/two.xhtml", chapter("Chapter Two", sentence)),
    ]
    if drm:
        entries.append(
            (
                "META-INF/encryption.xml",
                '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc='
                '"http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
                '<enc:CipherReference URI="OEBPS/two.xhtml"/></enc:CipherData></enc:EncryptedData>'
                "</encryption>",
            )
        )
    return _zip(*entries)


def _zip(*entries: tuple[str, str] | tuple[str, str, int]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            compress = entry[2] if len(entry) == 3 else zipfile.ZIP_DEFLATED
            archive.writestr(
                zipfile.ZipInfo(entry[0]) if compress == zipfile.ZIP_STORED else entry[0], entry[1]
            )
    return out.getvalue()


# --- hostile files ---------------------------------------------------------------------------------


def corrupt_docx() -> bytes:
    """A real DOCX with its main part cut short: the ZIP opens, the XML does not."""
    good = docx()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in source.infolist():
            data = source.read(info)
            copy.writestr(
                info.filename, data[: len(data) // 2] if info.filename == "word/document.xml" else data
            )
    return out.getvalue()


def with_part(document: bytes, part: str, data: bytes) -> bytes:
    """``document`` with one part replaced."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(document)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy,
    ):
        for info in source.infolist():
            copy.writestr(info.filename, data if info.filename == part else source.read(info))
    return out.getvalue()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
    b'<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
    b'<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]>'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    b"<w:p><w:r><w:t>&h;</w:t></w:r></w:p></w:body></w:document>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    b"<w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"
)


def zip_bomb(unpacked: int = 128 * 1024 * 1024, *, zip64: bool = True) -> bytes:
    """A DOCX-looking ZIP whose main part inflates ~1000:1 to ``unpacked`` bytes (streamed while
    written, so making it needs little memory)."""
    good = docx()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info.filename, source.read(info))
        with bomb.open("word/document.xml", "w", force_zip64=zip64) as part:
            block = b"<w:p/>" * (1024 * 1024 // 6)
            for _ in range(unpacked // len(block)):
                part.write(block)
    return out.getvalue()


def lying_zip() -> bytes:
    """A ZIP whose central directory says its main part is 1000 bytes while it inflates to 32 MB
    (a small declared size passes every check; zipfile must stop inflating at it)."""
    bomb = bytearray(zip_bomb(32 * 1024 * 1024, zip64=False))
    name = b"word/document.xml"
    at = bomb.find(b"PK\x01\x02")
    while at != -1:
        length = int.from_bytes(bomb[at + 28 : at + 30], "little")
        if bomb[at + 46 : at + 46 + length] == name:
            bomb[at + 24 : at + 28] = (1000).to_bytes(4, "little")  # uncompressed size
            return bytes(bomb)
        at = bomb.find(b"PK\x01\x02", at + 4)
    raise AssertionError("no central directory entry")


def cfb(*streams: str) -> bytes:
    """The start of an OLE compound file whose directory names ``streams`` (UTF-16LE names)."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    directory = b"".join(name.encode("utf-16-le").ljust(128, b"\x00") for name in streams)
    return header + directory + bytes(1024)


def many_entries(count: int = 10_001) -> bytes:
    """A DOCX-looking ZIP with more entries than any document has (each one costs an object
    in zipfile's directory before a per-entry check could run)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx())) as source, zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info))
        for index in range(count):
            archive.writestr(f"parley-padding/part{index}.xml", b"")
    return out.getvalue()
