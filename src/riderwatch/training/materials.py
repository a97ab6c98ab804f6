"""A course's materials: the pictures (a fraud leaflet, a hazard sign) and PDFs (the legal text) that go
with its text, stored once by their SHA-256 in the data dir and served by the app itself (no internet).

A file is taken for what its content is, not for its name: a picture must decode as a JPEG, PNG or WebP,
a PDF must start with the PDF header and hold its end marker (a file cut short in transfer is refused).
Retiring a material hides it from riders and keeps its row and file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from riderwatch.audit.service import record
from riderwatch.db import atomic
from riderwatch.errors import N_, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMedia
from riderwatch.infra.images import check_photo, sniff
from riderwatch.models import CourseMaterial, User
from riderwatch.training.service import course_of

MAX_BYTES = 20 * 1024 * 1024
PDF = "application/pdf"
# A PDF ends with "%%EOF" (and perhaps a line end or some padding after it).
PDF_TAIL = 1024


@dataclass(frozen=True)
class CheckedFile:
    content_type: str
    sha256: str
    size: int


def check_file(data: bytes, *, name: str) -> CheckedFile:
    """A picture that decodes or a whole PDF; anything else is refused with the reason. Decoding a picture
    takes CPU: call this in a worker thread."""
    if not data:
        raise InvalidInput(N_("%(name)s is empty"), name=name)
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(
            N_("%(name)s is %(size)d bytes; the limit is %(max)d bytes"), name=name, size=len(data), max=MAX_BYTES
        )
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-PDF_TAIL:]:
            raise InvalidInput(N_("%(name)s is not a whole PDF (its end is missing); save or send it again"), name=name)
        return CheckedFile(PDF, hashlib.sha256(data).hexdigest(), len(data))
    if sniff(data) is None:
        raise UnsupportedMedia(N_("%(name)s is neither a picture (JPEG, PNG, WebP) nor a PDF"), name=name)
    photo = check_photo(data, max_bytes=MAX_BYTES, name=name)
    return CheckedFile(photo.content_type, photo.sha256, len(data))


def materials(session: Session, course_id: int, *, include_retired: bool = False) -> list[CourseMaterial]:
    stmt = select(CourseMaterial).where(CourseMaterial.course_id == course_id)
    if not include_retired:
        stmt = stmt.where(CourseMaterial.active.is_(True))
    return list(session.scalars(stmt.order_by(CourseMaterial.position, CourseMaterial.id)))


def material_of(session: Session, *, code: str, material_id: int, include_retired: bool = False) -> CourseMaterial:
    course = course_of(session, code)
    found = session.get(CourseMaterial, material_id)
    if found is None or found.course_id != course.id or not (found.active or include_retired):
        raise NotFound(N_("no material %(id)d in this course"), id=material_id)
    return found


@atomic
def add_material(
    session: Session, *, actor: User, code: str, title: str, title_en: str = "", checked: CheckedFile
) -> CourseMaterial:
    """Record a checked file (already in the store) as the course's next material."""
    course = course_of(session, code)
    title = title.strip()
    if not title:
        raise InvalidInput(N_("give the material a title"))
    if len(title) > 200 or len(title_en) > 200:
        raise InvalidInput(N_("a title is at most 200 characters"))
    last = max((m.position for m in materials(session, course.id, include_retired=True)), default=-1)
    material = CourseMaterial(
        course_id=course.id,
        title=title,
        title_en=title_en.strip(),
        content_type=checked.content_type,
        sha256=checked.sha256,
        size=checked.size,
        position=last + 1,
        active=True,
    )
    session.add(material)
    session.flush()
    record(
        session,
        actor=actor,
        action="course.material",
        object_type="course",
        object_id=code,
        material=material.id,
        title=title,
        content_type=checked.content_type,
    )
    return material


@atomic
def set_active(session: Session, *, actor: User, code: str, material_id: int, active: bool) -> CourseMaterial:
    """Retire a material (riders no longer see it) or bring it back."""
    material = material_of(session, code=code, material_id=material_id, include_retired=True)
    if material.active != active:
        material.active = active
        session.flush()
        record(
            session,
            actor=actor,
            action="course.material_restore" if active else "course.material_retire",
            object_type="course",
            object_id=code,
            material=material.id,
        )
    return material
