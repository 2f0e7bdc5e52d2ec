"""Build node/demo/territory.jsonld, a demo territory, from the Apache-2.0 SemApps and Colibris datasets of
shared/data/datasets (see node/demo/ATTRIBUTION.md). The output is deterministic.

    python scripts/build_demo.py [--data-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import unicodedata
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rdflib import RDF, Graph, Namespace, URIRef

Doc = dict[str, Any]
Communes = dict[str, list[dict[str, str]]]
ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data" / "datasets"
OUT = ROOT / "node" / "demo" / "territory.jsonld"
CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/oscartes/ns/context.jsonld"]
COLLECTIONS = ["initiatives", "events", "needs", "offers", "resources", "places"]
PARIS = ZoneInfo("Europe/Paris")
PAIR = Namespace("http://virtual-assembly.org/ontologies/pair#")
SEMAPPS = "http://localhost:3000/"
OSC = "https://w3id.org/oscartes/vocab/"
ATTRIBUTION = (
    "Selected from data of https://github.com/assemblee-virtuelle/semapps (licence Apache-2.0): "
    "src/middleware/tests/webacl/testData.ttl at commit 751d53df941ef3f5f023bb42243038f355497181 (PAIR data "
    "of the Assemblée Virtuelle; e-mails and keys removed) and src/middleware/boilerplates/pair-ldp-server/"
    "imports/projets-pc.json and projets-rcc.json at commit 43c12dc0f2cce1b2d7485208361727842aaa2509 (Colibris "
    "local projects, Oise). Changed: selected, mapped to the Oscartes vocabularies, needs and offers extracted "
    "from free text, phone numbers masked. See node/demo/ATTRIBUTION.md."
)
# Theme notation -> regex on ASCII-folded lowercase text, matched at the start of a word.
THEME_RULES = {
    "food": r"alimentat|alimentaire|nourri|cuisin|epicerie|supermarche|repas|legume",
    "agriculture": r"agricult|fermes?\b|maraich|agroecolog|paysan|permacult|paturage", "organic": r"bios?\b|biologique",
    "short_circuits": r"circuits? courts?|producteurs? locaux|produits locaux|agriculteurs",
    "community_gardens": r"jardins? partages?|potager|plantes aromatiques|incroyables",
    "housing": r"habitat|logement|coliving", "mobility": r"mobilit|transports?\b", "cycling": r"velo|cyclis",
    "car_pool": r"covoitur|autopartage", "energy": r"energ", "climate": r"climat|transition ecologique|ecologie\b",
    "reuse": r"reutilis|reemploi|recycl", "repair": r"repar|bricolage|couture", "composting": r"compost",
    "second_hand": r"seconde main|recyclerie|ressourcerie|emmaus", "waste": r"dechet|gaspillage|megots?\b",
    "culture": r"cinema|films?\b|bals?\b|danse|musique|spectacle|lectures?\b|livres?\b|biblioth|artisti|culturel",
    "education": r"educat|ecoles?\b|pedagog|formation|enseign|sensibilis|scolaire|universit|alphabetis",
    "employment": r"emplois?\b|insertion professionnelle|chomeur|travail associe|salariat",
    "finance": r"financer|monnaie|modeles? economiques?|fonds d'investissement",
    "health": r"sante\b|huiles essentielles|aromather|bien-etre", "water": r"eau de pluie",
    "biodiversity": r"biodiversit|nature\b|environnement(?:al|ale|aux)?\b|foret|ruche",
    "governance": r"gouvernance|democrat|citoyen|participati|cooperation|concertation|intelligence collective"
    r"|pouvoir d'agir|collaborati|communs?\b",
    "digital": r"numerique|web\b|logiciel|donnees|informati|internet|semantique|solid\b|open source|outils libres"
    r"|application",
    "solidarity": r"solidari|solidaire|social|precarite|exclusion|migrants|isolement|entraide|mixite",
    "third_places": r"tiers-lieu|tiers lieu|lieu de partage", "coworking": r"coworking", "crafts": r"artisan",
    "tourism": r"tourism|randonn|voyage",
}
COLIBRIS_TAGS = {  # the Colibris categories "Économie" and "Révolution intérieure" fit none
    "agriculture": "agriculture", "alimentation": "food", "culture": "culture", "social": "solidarity",
    "democratie": "governance", "gouvernance": "governance", "energie": "energy", "habitat": "housing",
    "education": "education", "sante": "health",
}
# Need category -> regex on a folded statement. It also classifies the SemApps skill labels.
NEED_RULES = {
    "premises": r"(?:un|le|du|ce|des|les) locale?s?\b|\bsalles?\b|\blieu\b|\bbati\b",
    "land": r"\bterrains?\b|\bterres? a cultiver|\bparcelles?\b|\bfoncier|\bun jardin\b",
    "volunteers": r"benevole|volontaire|\bbras\b|coup de main|reparat|couturi|\bde vous\b|nouvelles personnes"
    r"|autres personnes|travaux a faire|bienvenu|\bcontribu",
    "internship": r"\bstages?\b|stagiaire", "civic_service": r"service civique",
    "job": r"chef de culture|animateur|salarie|embauch|\bemplois?\b|\bposte\b",
    "skills_legal": r"juridique|\bstatut\b|fiscal",
    "skills_financial": r"competences? (?:juridiques? / )?financ|comptab|fundrais",
    "skills_digital": r"webdesign|informati|\bweb\b|numerique|developpe|logiciel|donnees|javascript|react|node"
    r"|rdf|ldp|ontolog|wiki|activity pub|\bux\b|graphes|d3js|jena|moleculer|architecture",
    "skills_communication": r"graphiste|graphisme|vulgarisation|narration|evenementiel",
    "funding": r"financ|subvention|\bfonds\b|cagnotte|mecen",
    "equipment": r"materiel|outils?\b|rayons|etageres|caisse|bidons|\bsono\b",
    "goods": r"\bplants?\b|plans de|semences|graines|\bcompost\b|bonne terre|palettes|grillage|flacons?",
    "skills": r"competence|electricien|plombier|macon|formees? au|expertise|gestion de|animation de|facilitation"
    r"|formation|education|pedagog|gouvernance|\bproduct\b|agronomie|ingenierie",
    "communication": r"diffusion|communiquer|communication|faire connaitre|affiche",
    "partnership": r"partenaire|contact aupres|commercants",
}
LABELS = {  # in the titles "Besoin : {label} – {initiative}" and "Offre : {label} – {initiative}"
    "premises": "local ou salle", "land": "terrain", "volunteers": "bénévoles", "internship": "stage",
    "civic_service": "service civique", "job": "emploi", "skills_legal": "compétences juridiques",
    "skills_financial": "compétences financières", "skills_digital": "compétences numériques",
    "skills_communication": "compétences en communication", "funding": "financement", "equipment": "matériel",
    "goods": "fournitures", "skills": "compétences", "communication": "diffusion", "partnership": "partenariat",
}
NOT_NEEDS = {  # Colibris "Besoins" sections that express no need of the project itself
    "CreationDUnEspacePotagerALaCommunauteD",  # announces a permaculture weekend
    "ProjetEcopastoralismeDeLAssociationLArb",  # asks for votes in a contest
    "UtilisationDesHuilesEssentielles",  # lists what each participant brings
}
COLIBRIS_OFFERS = [  # offers read in the Colibris texts: project, a quote of the source line, category
    ("ActionCommunicationGrandPublic", "Tables, chaises, grilles d'expo", "equipment"),
    ("FaireVivreDesCerclesDeParoleDansUnZome", "peut mettre à disposition", "premises"),
    ("HeterraAssociationDePromotionDeLInoovati", "Expertise et connaissances", "skills"),
    ("InstallerDesBacsDePlantesAromatiquesDevan", "partager nos expériences", "skills"),
    ("JardinsPartagesEnAgroecologie", "parcelles pour accueillir", "land"),
    ("ReconnexioN", "Mise en place d'une application mobile", "skills_digital"),
]
SHARED_VENUES = [  # venues that several Colibris projects share: slug, name, commune, projects, street
    ("communaute_emmaus_erquery", "Communauté Emmaüs d'Erquery", "Erquery",
     ["CreationDUnEspacePotagerALaCommunauteD", "ReseauCitoyensSolidaires"], ""),
    ("local_pangkor_compiegne", "Local de l'association Pangkor", "Compiègne",
     ["SoireeCineEchangeMensuelles", "UtilisationDesHuilesEssentielles"], "10 rue du four St Jacques"),
]
# SemApps events: the organiser that the title names when the data links none, dates given only in the
# title and text (Paris time), a venue named only in the text.
EVENT_FIXES = {
    "atelier-refonte-assemblee-virtuelle-1": {"by": "organizations/assemblee_virtuelle"},
    "residence-semapps": {"by": "projects/semapps"},
    "sprint-participatif-1-au-5-mars-en-visio-de-11h30-a-13h30-superieure-a-organisation-des-10-ans-de-l-av": {
        "by": "organizations/assemblee_virtuelle", "start": "2021-03-01T11:30", "end": "2021-03-05T13:30"},
    "meetup-interoperabilite": {"place": "Les Grands Voisins, salle de la Pouponnière"},
}


def fold(text: str) -> str:
    """Lowercase ASCII form of French text ('Émmaüs' -> 'emmaus'), punctuation kept."""
    return unicodedata.normalize("NFKD", text.replace("’", "'")).encode("ascii", "ignore").decode().lower()


def slugify(text: str, max_len: int, taken: set[str] | None = None) -> str:
    """`[a-z0-9_]` slug cut on a word boundary; with taken, made unique (_2, _3...) and added to it."""
    slug = "_".join(re.sub(r"[^a-z0-9]+", " ", fold(text)).split()) or "x"
    if len(slug) > max_len:
        slug = slug[: max_len + 1].rsplit("_", 1)[0][:max_len]
    result, n = slug, 1
    while taken is not None and result in taken:
        n += 1
        result = f"{slug[: max_len - len(str(n)) - 1]}_{n}"
    if taken is not None:
        taken.add(result)
    return result


def fix_mojibake(text: str) -> str:
    """Repair the UTF-8 read as Latin-1 in the Colibris export ('prÃªt' -> 'prêt', 'Ã ' -> 'à')."""
    text = text.replace("Ã ", "à").replace("\xa0", " ")
    return re.sub(r"[ÂÃ][\x80-\xbf]", lambda m: m.group().encode("latin-1").decode(), text)


def plain_text(text: str) -> str:
    """Markdown, wiki and HTML markup removed, phone numbers masked, one item per line."""
    text = re.sub(r"<[^>]+>", "\n", text)
    text = re.sub(r"\[\[(\S+) ([^\]]+)\]\]", r"\2", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 (\2)", text)
    text = re.sub(r"\*\*|^\s*#+\s*|^\s*[-*]\s*|^-+$", "", text, flags=re.M)
    text = re.sub(r"\b0\d(?:[ .]?\d\d){4}\b", "[téléphone masqué]", text)
    text = re.sub(r"[?&]pwd=\S+", "", text)  # a meeting password in a link
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def cut(text: str, limit: int) -> str:
    """text, or its start up to a sentence end (or a word, then '…') within limit chars."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    stop = max(head.rfind(". "), head.rfind("! "), head.rfind("? "), head.rfind("\n"))
    return head[: stop + 1].strip() if stop > limit // 2 else head[: head.rfind(" ")] + "…"


def summary_text(text: str, limit: int = 600) -> str:
    """One paragraph of plain text of at most limit chars."""
    lines = plain_text(text).splitlines()
    return cut(" ".join(ln if ln[-1] in ".!?:;…" else ln + "." for ln in lines), limit)


def themes_of(*texts: str, limit: int = 5) -> list[str]:
    """The theme concepts whose keywords occur in texts, in order of first occurrence."""
    found: list[str] = []
    for text in texts:
        folded = fold(text)
        hits = [(m.start(), notation) for notation, pattern in THEME_RULES.items()
                if (m := re.search(rf"(?<![a-z])(?:{pattern})", folded))]
        found += [iri for _, notation in sorted(hits) if (iri := f"{OSC}themes/{notation}") not in found]
    return found[:limit]


def classify_need(statement: str) -> list[str]:
    """Need categories that one French statement expresses, in NEED_RULES order.

    Nothing for a negation ('Pas de besoin…') or a thing the project has ('Nous avons 2 parcelles…');
    a precise skill replaces the generic 'skills' and 'funding'.
    """
    folded = re.sub(r"quel(?:le)?s? que soient vos competences", "", fold(statement))
    if re.match(r"\W*(?:pas de besoin|nous avons \d)", folded):
        return []
    cats = [cat for cat, pattern in NEED_RULES.items() if re.search(pattern, folded)]
    if any(cat.startswith("skills_") for cat in cats):
        cats = [cat for cat in cats if cat not in ("skills", "funding")]
    return cats


def need_statements(besoins: str) -> list[str]:
    """A 'Besoins' section as statements: one per line, a line ending in ':' with its '-' items."""
    text = re.sub(r"<[^>]+>", "\n", besoins)
    text = re.sub(r":[ \t]*(?:\n[ \t]*-[^\n]*)+", lambda m: " ".join(m.group().split()), text)
    return plain_text(text).splitlines()


def sections(content: str) -> dict[str, str]:
    """'intro' and the <h2> sections ('moyens', 'besoins') of a Colibris project's content."""
    parts = re.split(r"<h2>([^<]+)</h2>", content)
    return {"intro": parts[0]} | {fold(t).strip(): body for t, body in zip(parts[1::2], parts[2::2], strict=True)}


def parse_time(value: str) -> datetime:
    """An aware datetime: a naive time is Paris time, a bare date is 00:00 UTC."""
    parsed = datetime.fromisoformat(value.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=PARIS if len(value.strip()) > 10 else UTC)


def utc(value: str) -> str:
    """A source date as 'YYYY-MM-DDTHH:MM:SSZ', or '' if there is none."""
    return parse_time(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value.strip() else ""


def load_communes(path: Path) -> Communes:
    """The communes (COM rows) of fr-communes-insee.csv by folded name."""
    index: Communes = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["type"] == "COM":
                index[fold(row["nom"]).replace("-", " ")].append(row)
    return index


def find_commune(communes: Communes, name: str, postcode: str = "", dept: str = "") -> dict[str, str] | None:
    """The one commune called name (in dept; with postcode if the CSV lists it there), or None."""
    rows = [r for r in communes.get(fold(name).replace("-", " ").strip(), []) if dept in ("", r["code_departement"])]
    rows = [r for r in rows if postcode and postcode in r["codes_postaux"].split("|")] or rows
    return rows[0] if len(rows) == 1 else None


def place(name: str, lat: Any, lon: Any, street: str = "", postcode: str = "", commune: Doc | None = None) -> Doc:
    """A Place: coordinates only if they are in metropolitan France, the commune's code, an address."""
    doc: Doc = {"type": "Place", "name": name}
    if lat is not None and lon is not None and 41 <= lat <= 51.5 and -5.5 <= lon <= 10:
        doc |= {"latitude": round(float(lat), 6), "longitude": round(float(lon), 6)}
    address = {"streetAddress": street.strip(), "postalCode": postcode}
    if commune:
        codes = commune["codes_postaux"].split("|")
        address |= {"postalCode": postcode or (codes[0] if len(codes) == 1 else ""), "addressLocality": commune["nom"]}
        doc["igeo:codeINSEE"] = commune["code_insee"]
    if any(address.values()):
        doc["address"] = {"type": "PostalAddress", **address, "addressCountry": "FR"}
    return doc


def proposal(collection: str, cat: str, owner: Doc, text: str, taken: set[str]) -> Doc:
    """A need (collection 'needs') or an offer ('offers') of category cat by the initiative owner."""
    need, slug = collection == "needs", slugify(f"{cat} {owner['preferredUsername']}", 60, taken)
    return {
        "id": f"{collection}/{slug}",
        "type": ["Note", "Proposal"], "purpose": "request" if need else "offer",
        "name": f"{'Besoin' if need else 'Offre'} : {LABELS[cat]} – {cut(owner['name'], 60)}", "content": text,
        "attributedTo": owner["id"], "pair:hasTopic": owner["pair:hasTopic"], "location": owner.get("location"),
        "publishes": {"type": "Intent", "resourceClassifiedAs": [f"{OSC}needs/{cat}"]},
        "published": owner.get("published"), "updated": owner.get("updated"),
    }


def legal_form(text: str) -> str:
    """The declared-association legal form if text says 'loi 1901', else ''."""
    return OSC + "legal-forms/9220" if re.search(r"loi (?:de )?1901", fold(text)) else ""


def colibris_place(location: Doc, communes: Communes) -> Doc:
    """A project's place; its commune is its name, the name's last part or the name's (parenthesis)."""
    name = location["name"].strip()
    names = [name, name.rsplit(",", 1)[-1], *re.findall(r"\(([^)]+)\)", name)]
    commune = next(filter(None, (find_commune(communes, n, dept="60") for n in names)), None)
    return place(name, location["latitude"], location["longitude"], commune=commune)


def colibris(projects: list[Doc], communes: Communes, taken: set[str], count: int) -> tuple[Doc, list[Doc], list[Doc]]:
    """The projects of the shared venues and the located ones richest in needs and offers, up to count in all,
    as initiatives (by source slug); their needs; their offers."""
    venue_users = {project for venue in SHARED_VENUES for project in venue[3]}
    candidates = []
    for project in projects:
        parts = sections(project["content"])
        statements = need_statements("" if project["slug"] in NOT_NEEDS else parts.get("besoins", ""))
        cats = {cat: [s for s in statements if cat in classify_need(s)] for cat in NEED_RULES}
        location = colibris_place(project["location"], communes)
        richness = sum(map(bool, cats.values())) + 2 * sum(o[0] == project["slug"] for o in COLIBRIS_OFFERS)
        if project["slug"] in venue_users:
            richness += 100
        elif "latitude" not in location or not richness:
            continue
        candidates.append((-richness, project["slug"], project, parts, location, cats))
    kept: Doc = {}
    needs: list[Doc] = []
    for _, source_slug, project, parts, location, cats in sorted(candidates)[:count]:
        name, summary = " ".join(project["name"].split()), summary_text(parts["intro"])
        tags = {COLIBRIS_TAGS[t] for tag in project["tag"] if (t := fold(tag["name"])) in COLIBRIS_TAGS}
        themes = themes_of(name, summary) or [f"{OSC}themes/{tag}" for tag in sorted(tags)]
        slug = slugify(name, 30, taken)
        doc = kept[source_slug] = {
            "id": f"initiatives/{slug}", "type": ["Organization", "pair:Project"], "preferredUsername": slug,
            "name": name, "summary": summary, "pair:hasTopic": themes,
            "essglobal:legalForm": legal_form(project["content"]), "pair:homePage": project.get("url"),
            "location": location, "published": utc(project["published"]), "updated": utc(project["updated"]),
        }
        if doc["updated"] < doc["published"]:
            doc["updated"] = ""
        needs += [proposal("needs", cat, doc, "\n".join(texts), taken) for cat, texts in cats.items() if texts]
    offers = []
    for source_slug, quote, cat in COLIBRIS_OFFERS:
        project = next(p for p in projects if p["slug"] == source_slug)
        line = next(ln for ln in plain_text(project["content"]).splitlines() if quote in ln)  # the source changed?
        if source_slug in kept:
            offers.append(proposal("offers", cat, kept[source_slug], line, taken))
    return kept, needs, offers


def venues(kept: Doc, communes: Communes) -> list[Doc]:
    """Place records for the venues that at least two kept projects share."""
    docs = []
    for slug, name, locality, projects, street in SHARED_VENUES:
        users = [kept[p] for p in projects if p in kept]
        located = [u["location"] for u in users if "latitude" in u["location"]]
        if len(users) > 1 and located:
            commune = find_commune(communes, locality, dept="60")
            doc = place(name, located[0]["latitude"], located[0]["longitude"], street, commune=commune)
            summary = f"{name}, lieu partagé par les projets " + " et ".join(f"« {u['name']} »" for u in users) + "."
            docs.append(doc | {"id": f"places/{slug}", "type": ["Place", "pair:Place"], "summary": summary})
    return docs


def lit(g: Graph, subject: Any, prop: URIRef) -> str:
    """The stripped text of subject's prop in g, or ''."""
    value = g.value(subject, prop)
    return str(value).strip() if value is not None else ""


def topics(g: Graph, subject: Any) -> str:
    """The labels of subject's PAIR themes, as one text."""
    return ". ".join(lit(g, theme, PAIR.label) for theme in g.objects(subject, PAIR.hasTopic))


def semapps_place(g: Graph, subject: Any, communes: Communes) -> Doc:
    """subject's first pair:hasLocation as a Place, or {}."""
    for node in sorted(g.objects(subject, PAIR.hasLocation), key=lambda node: lit(g, node, PAIR.label)):
        address = g.value(node, PAIR.hasPostalAddress)
        postcode, locality = lit(g, address, PAIR.addressZipCode), lit(g, address, PAIR.addressLocality)
        lat, lon = (float(value) if (value := lit(g, node, p)) else None for p in (PAIR.latitude, PAIR.longitude))
        commune = find_commune(communes, locality, postcode)
        return place(lit(g, node, PAIR.label), lat, lon, lit(g, address, PAIR.addressStreet), postcode, commune)
    return {}


def semapps_initiatives(g: Graph, communes: Communes, taken: set[str], count: int) -> dict[Any, Doc]:
    """The count SemApps organisations and projects with a theme that are best described (a located place, a
    text, a homepage, source themes, links), as initiatives, by IRI."""
    kinds: dict[Any, list[str]] = {
        PAIR.Organization: ["Organization", "pair:Organization", "essglobal:SSEInitiative"],
        PAIR.Project: ["Organization", "pair:Project"],
    }
    candidates = []
    for subject, kind in sorted((s, k) for s, k in g.subject_objects(RDF.type) if k in kinds):
        name, homepage = lit(g, subject, PAIR.label), lit(g, subject, PAIR.homePage)
        text = lit(g, subject, PAIR.description) or lit(g, subject, PAIR.comment)
        themes = themes_of(topics(g, subject), name, text)
        if not themes or not (text or homepage) or slugify(name, 30) in taken:
            continue
        location = semapps_place(g, subject, communes)
        linked = bool({PAIR.partnerOf, PAIR.involves} & set(g.predicates(subject)))
        rank = 3 * ("latitude" in location) + 2 * bool(text) + bool(homepage) + bool(topics(g, subject)) + linked
        doc: Doc = {"type": kinds[kind], "name": name, "summary": summary_text(text), "pair:homePage": homepage,
                    "pair:hasTopic": themes, "essglobal:legalForm": legal_form(text), "location": location}
        candidates.append((-rank, slugify(name, 30), subject, doc))
    kept: dict[Any, Doc] = {}
    for _, slug, subject, doc in sorted(candidates)[:count]:
        slug = slugify(slug, 30, taken)
        kept[subject] = {"id": f"initiatives/{slug}", "preferredUsername": slug} | doc
    for subject, doc in kept.items():
        for prop, key in ((PAIR.partnerOf, "pair:partnerOf"), (PAIR.involves, "pair:involves")):
            doc[key] = sorted({kept[o]["id"] for o in g.objects(subject, prop) if o in kept})
    return kept


def semapps_events(g: Graph, kept: dict[Any, Doc], communes: Communes) -> list[Doc]:
    """The dated SemApps events that the data (or EVENT_FIXES) links to a kept initiative."""
    events = []
    for subject in sorted(g.subjects(RDF.type, PAIR.Event), key=str):
        fix = EVENT_FIXES.get(str(subject).rsplit("/", 1)[-1], {})
        by = [o for o in g.objects(subject, PAIR.involves) if o in kept]
        by = by or [o for o in [URIRef(SEMAPPS + fix.get("by", ""))] if o in kept]
        start = lit(g, subject, PAIR.startDate) or fix.get("start", "")
        if not by or not start:
            continue
        begin = parse_time(start)
        end = parse_time(lit(g, subject, PAIR.endDate) or fix.get("end") or start)
        end = end if end > begin else begin + timedelta(hours=2)
        name, organizers = lit(g, subject, PAIR.label), sorted(kept[o]["id"] for o in by)
        text = f"{lit(g, subject, PAIR.comment)}\n{lit(g, subject, PAIR.description)}"
        paris = find_commune(communes, "Paris")  # the only venue in EVENT_FIXES
        events.append({
            "id": f"events/{slugify(name, 60)}", "type": ["Event", "pair:Event"], "name": name,
            "content": cut(plain_text(text), 1500), "startTime": begin.astimezone(PARIS).isoformat(),
            "endTime": end.astimezone(PARIS).isoformat(), "timezone": "Europe/Paris",
            "attributedTo": organizers[0], "organizers": organizers, "url": lit(g, subject, PAIR.homePage),
            "pair:hasTopic": themes_of(topics(g, subject), name),
            "location": place(fix["place"], None, None, commune=paris) if "place" in fix else None,
        })
    return events


def semapps_resources(g: Graph, kept: dict[Any, Doc]) -> list[Doc]:
    """The named pair:Document records, except those about a person (personal data)."""
    docs = []
    for subject in sorted(g.subjects(RDF.type, PAIR.Document), key=str):
        about = sorted(g.objects(subject, PAIR.documents), key=str)
        name, text = lit(g, subject, PAIR.label), lit(g, subject, PAIR.description)
        if name and not any((o, RDF.type, PAIR.Person) in g for o in about):
            url = re.search(r"https?://[^\s)\]]+", text)
            authors = [kept[o]["id"] for o in about if o in kept]
            docs.append({
                "id": f"resources/{slugify(name, 60)}", "type": ["Document", "pair:Document"], "name": name,
                "summary": summary_text(re.sub(r"^URL : \S+", "", text)), "url": url and url.group(),
                "attributedTo": authors and authors[0], "pair:hasTopic": themes_of(name, text),
            })
    return docs


def semapps_offers(g: Graph, kept: dict[Any, Doc], taken: set[str]) -> list[Doc]:
    """The skills that members of a kept initiative offer (pair:offers), one offer per category with two or more."""
    offers = []
    for subject, owner in sorted(kept.items()):
        members = g.objects(subject, PAIR.affiliates)
        skills = {lit(g, skill, PAIR.label) for member in members for skill in g.objects(member, PAIR.offers)}
        for cat in ("skills", "skills_communication", "skills_digital", "skills_financial"):
            matching = sorted(skill for skill in skills if classify_need(skill)[:1] == [cat])
            if len(matching) > 1:
                text = f"Compétences offertes par des membres de « {owner['name']} » : {', '.join(matching)}."
                offers.append(proposal("offers", cat, owner, text, taken))
    return offers


def prune(value: Any) -> Any:
    """value without its empty strings, lists and dicts and its None, recursively."""
    if isinstance(value, dict):
        pruned = {key: prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in ("", [], {}, None)}
    return [prune(item) for item in value] if isinstance(value, list) else value


def build(data_dir: Path) -> Doc:
    """The demo territory built from the datasets in data_dir."""
    communes = load_communes(data_dir / "fr-communes-insee.csv")
    projects = []
    for area in ("pays-creillois", "compiegnois"):
        path = data_dir / f"colibris-projets-{area}.json"
        projects += json.loads(fix_mojibake(path.read_text(encoding="utf-8")))
    graph = Graph().parse(data_dir / "semapps-testData.sanitized.ttl", format="turtle")
    taken: set[str] = set()
    colibris_kept, needs, colibris_offers = colibris(projects, communes, taken, 17)
    kept = semapps_initiatives(graph, communes, taken, 22)
    records = {
        "initiatives": [*kept.values(), *colibris_kept.values()], "needs": needs,
        "events": semapps_events(graph, kept, communes), "resources": semapps_resources(graph, kept),
        "offers": semapps_offers(graph, kept, taken) + colibris_offers, "places": venues(colibris_kept, communes),
    }
    ordered = [(c, doc) for c in COLLECTIONS for doc in sorted(records[c], key=lambda doc: str(doc["id"]))]
    return {"@context": CONTEXT, "attribution": ATTRIBUTION,
            "records": [{"collection": c, "doc": prune(doc)} for c, doc in ordered]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build node/demo/territory.jsonld from shared/data/datasets.")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"default: {DATA_DIR}")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args(argv)
    territory = build(args.data_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(territory, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    counts = Counter(record["collection"] for record in territory["records"])
    print(f"wrote {args.out}:", ", ".join(f"{counts[c]} {c}" for c in COLLECTIONS))


if __name__ == "__main__":
    main()
