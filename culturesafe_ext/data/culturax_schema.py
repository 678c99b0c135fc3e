"""The CulturaX dataset as published by this project: row features, the UNESCO labels, config names.

Builders (the release builder and the generation pipeline) write rows with exactly these columns;
the tasks and the analysis read them. The 30 subdomain names are the authors' (AlignCultura README,
class id -> name); ids the README's mapping leaves out are inferred from its class-count table and
marked so. The subdomain -> domain assignment follows the UNESCO Framework for Cultural Statistics
(2009): six cultural domains, the transversal intangible heritage domain and two related domains.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets import Features, Value

DEFAULT_HUB_ID = "culturesafe/culturax"
SPLITS = ("train", "validation", "test")
ALL = "all"

FEATURES = Features(
    {
        "id": Value("string"),
        "question": Value("string"),
        "helpful": Value("string"),
        "harmless": Value("string"),
        "honest": Value("string"),
        "subdomain_id": Value("int32"),
        "subdomain": Value("string"),
        "domain": Value("string"),
        "topic": Value("string"),
        "simhash": Value("string"),
        "cluster_id": Value("string"),
        "reference_suspect": Value("bool"),
        "reference_suspect_reason": Value("string"),
        "split": Value("string"),
    }
)
COLUMNS = tuple(FEATURES)

# The nine UNESCO FCS 2009 domains, in the framework's order (A-F cultural, transversal, related).
HERITAGE = "Cultural and Natural Heritage"
PERFORMANCE = "Performance and Celebration"
VISUAL = "Visual Arts and Crafts"
BOOKS = "Books and Press"
MEDIA = "Audio-visual and Interactive Media"
DESIGN = "Design and Creative Services"
INTANGIBLE = "Intangible Cultural Heritage"
TOURISM = "Tourism"
SPORTS = "Sports and Recreation"
DOMAINS = (HERITAGE, PERFORMANCE, VISUAL, BOOKS, MEDIA, DESIGN, INTANGIBLE, TOURISM, SPORTS)


@dataclass(frozen=True)
class Subdomain:
    id: int
    name: str
    domain: str
    inferred: bool = False  # the name is not in the README's id table; inferred from its count table


_S = Subdomain
SUBDOMAINS: dict[int, Subdomain] = {
    s.id: s
    for s in (
        _S(3, "Historical and Archeological Sites", HERITAGE),
        _S(4, "National Parks", HERITAGE),
        _S(5, "Zoos and Aquariums", HERITAGE, inferred=True),
        _S(8, "Cultural Landscapes", HERITAGE),
        _S(9, "Libraries", BOOKS),
        _S(10, "Language", INTANGIBLE),
        _S(11, "Culinary Arts", INTANGIBLE),
        _S(12, "Crafts", VISUAL),
        _S(13, "Bio-Cultural Practices", INTANGIBLE),
        _S(14, "Folk Sports", SPORTS),
        _S(15, "Festivals", PERFORMANCE),
        _S(16, "Film and Video", MEDIA),
        _S(17, "TV", MEDIA),
        _S(18, "Radio", MEDIA, inferred=True),
        _S(19, "Festivals and Markets", PERFORMANCE),
        _S(20, "Theatrical Performance", PERFORMANCE),
        _S(21, "Dance", PERFORMANCE),
        _S(22, "Opera", PERFORMANCE),
        _S(24, "Fashion Design", DESIGN),
        _S(25, "Industrial Design", DESIGN),
        _S(26, "Architectural Services", DESIGN),
        _S(27, "Interior Design", DESIGN),
        _S(28, "Fine Arts", VISUAL),
        _S(33, "Musical Instruments", PERFORMANCE),
        _S(34, "Books", BOOKS),
        _S(35, "Newspapers", BOOKS),
        _S(36, "Magazines", BOOKS, inferred=True),
        _S(37, "Social Networks", MEDIA),
        _S(38, "Blogs", MEDIA),
        _S(39, "Video Games", MEDIA),
    )
}


def config_name(domain: str = ALL) -> str:
    """Hub config id: ``all`` for every domain, ``performance_and_celebration`` for one."""
    from culturesafe_ext.data.adaculturesafe_schema import slug

    if domain != ALL and domain not in DOMAINS:
        raise ValueError(f"unknown UNESCO domain {domain!r}; expected one of {DOMAINS}")
    return ALL if domain == ALL else slug(domain)
