"""Arabic text normalisation for matching answers, not for display.

Speech recognisers and people spell the same word many ways: with or without harakat, with
any of four alef forms, with ta marbuta written as ha, with alef maqsura written as ya, with
Arabic-Indic or Persian digits, with letters stretched by tatweel or by repetition
("نعععم"). Matching is done on one folded form so that the lexicon needs each word once.
The folding loses information (ة and ه meet, ى and ي meet), which is fine for the small
closed vocabularies of questionnaire answers and wrong for anything shown to a person.
"""

from __future__ import annotations

import re

# Harakat, tanwin, shadda, sukun, superscript alef and the Quranic marks that recognisers
# sometimes emit: none changes which answer a word is.
_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_TATWEEL = "\u0640"

_LETTER_MAP = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ٲ": "ا",
        "ٳ": "ا",
        "ؤ": "و",
        "ئ": "ي",
        "ى": "ي",
        "ی": "ي",  # Persian yeh, common in keyboard input
        "ک": "ك",  # Persian keheh
        "ة": "ه",
        "ۀ": "ه",
        # A lone hamza is dropped: "شيء"/"شي" and "لاء"/"لا" are the same answer.
        "ء": "",
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Persian (Eastern Arabic-Indic) digits
    }
)

# Punctuation of both scripts becomes a word break; digits and letters stay.
_PUNCTUATION = re.compile(r"[^\w\s]|_", re.UNICODE)
# Three or more of the same letter are speech stretched in writing ("لااا", "ايييوه").
_STRETCHED = re.compile(r"(\D)\1{2,}")
_SPACES = re.compile(r"\s+")
_DIGIT_RUN = re.compile(r"(\d+)")


def normalize(text: str) -> str:
    """Fold ``text`` to the matching form: one space between words, no marks, ASCII digits."""
    folded = _DIACRITICS.sub("", text).replace(_TATWEEL, "")
    folded = folded.translate(_LETTER_MAP).casefold()
    folded = _PUNCTUATION.sub(" ", folded)
    folded = _STRETCHED.sub(r"\1", folded)
    # Digits glued to letters ("٣مرات", "الخيار2") are separate words for matching.
    folded = _DIGIT_RUN.sub(r" \1 ", folded)
    return _SPACES.sub(" ", folded).strip()


def tokens(text: str) -> tuple[str, ...]:
    """The normalised words of ``text``."""
    folded = normalize(text)
    return tuple(folded.split(" ")) if folded else ()
