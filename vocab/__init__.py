"""Vocabularies of an Oscartes node: contexts, SKOS schemes, SHACL shapes.

This module holds constants only, so that importing ``vocab`` never parses a
file; the loaders live in ``vocab.loader``, ``vocab.schemes`` and
``vocab.shapes``.
"""

from pathlib import Path
from typing import Final

VOCAB_DIR: Final = Path(__file__).resolve().parent

OSC: Final = "https://w3id.org/oscartes/ns#"
VOCAB_BASE: Final = "https://w3id.org/oscartes/vocab/"
SCHEMES: Final = ("themes", "needs", "legal-forms", "gears")
CONTEXT_PATH: Final = "/ns/context.jsonld"

AS2_CONTEXT: Final = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT: Final = "https://w3id.org/security/v1"
PUBLIC: Final = "https://www.w3.org/ns/activitystreams#Public"

AS: Final = "https://www.w3.org/ns/activitystreams#"
SEC: Final = "https://w3id.org/security#"
PAIR: Final = "http://virtual-assembly.org/ontologies/pair#"
ESSGLOBAL: Final = "http://purl.org/essglobal/vocab/"
ESSGLOBAL_STANDARD: Final = "http://purl.org/essglobal/standard/"
VF: Final = "https://w3id.org/valueflows/ont/vf#"
OM2: Final = "http://www.ontology-of-units-of-measure.org/resource/om-2/"
SCHEMA: Final = "http://schema.org/"
IGEO: Final = "http://rdf.insee.fr/def/geo#"
SKOS: Final = "http://www.w3.org/2004/02/skos/core#"
DCTERMS: Final = "http://purl.org/dc/terms/"
PROV: Final = "http://www.w3.org/ns/prov#"
XSD: Final = "http://www.w3.org/2001/XMLSchema#"
TOOT: Final = "http://joinmastodon.org/ns#"
# FEP-8a8e terms are plain IRIs under this base (no trailing '#').
FEP_8A8E: Final = "https://w3id.org/fep/8a8e/"
