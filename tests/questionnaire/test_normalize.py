"""Folding Arabic spellings to one matching form."""

from __future__ import annotations

import pytest

from hana_voice.questionnaire.normalize import normalize, tokens


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("نَعَمْ", "نعم"),  # harakat
        ("نعـــم", "نعم"),  # tatweel
        ("أحمد إلى آخر ٱلكتاب", "احمد الي اخر الكتاب"),  # alef forms
        ("مؤلم", "مولم"),  # hamza on waw
        ("مسئول", "مسيول"),  # hamza on ya
        ("بلى", "بلي"),  # alef maqsura
        ("ثلاثة", "ثلاثه"),  # ta marbuta
        ("شيء", "شي"),  # lone hamza
        ("٠١٢٣٤٥٦٧٨٩", "0123456789"),  # Arabic-Indic digits
        ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),  # Persian digits
        ("نعم، طبعاً!", "نعم طبعا"),  # punctuation and tanwin
        ("لااااا", "لا"),  # stretched letters
        ("الخيار٢", "الخيار 2"),  # digits glued to words
        ("  OK  ", "ok"),
        ("", ""),
    ],
)
def test_normalize(raw: str, folded: str) -> None:
    assert normalize(raw) == folded


def test_tokens() -> None:
    assert tokens("ما  في، شي") == ("ما", "في", "شي")
    assert tokens("   ") == ()


def test_double_letters_that_belong_to_the_word_stay() -> None:
    assert normalize("الله") == "الله"
