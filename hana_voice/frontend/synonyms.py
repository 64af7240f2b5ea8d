"""The usual spoken synonyms of the option words hospitals write in multiple-choice templates.

A front-end template gives only the option texts (``expected_responses``). Callers rarely
repeat an option word for word, so each option is also understood by the other ways people
say the same thing in MSA and the Gulf, Saudi, Levantine and Egyptian dialects. Keys and
synonyms are matched after :func:`~hana_voice.questionnaire.normalize.normalize` (hamza,
taa marbuta and diacritics folded), so one spelling per word is enough.
"""

from __future__ import annotations

from hana_voice.questionnaire.normalize import normalize

_GROUPS: tuple[tuple[str, ...], ...] = (
    ("ممتاز", "ممتازة", "رائع", "رائعة", "ممتاز جدا", "عظيم", "فوق الممتاز", "مرة حلو"),
    ("جيد جدا", "جيدة جدا", "كويس جدا", "زين وايد", "منيح كتير", "حلو كثير"),
    ("جيد", "جيدة", "كويس", "كويسة", "زين", "زينة", "منيح", "منيحة", "حلو", "طيب", "تمام"),
    ("مقبول", "مقبولة", "عادي", "عادية", "متوسط", "متوسطة", "نص نص", "لا بأس"),
    ("سيء", "سيئ", "سيئة", "وحش", "وحشة", "مو زين", "مش كويس", "مش منيح", "خايس", "تعبان"),
    ("سيء جدا", "سيئة جدا", "سيئ جدا", "وحش جدا", "مرة سيء", "زفت"),
    ("أفضل", "احسن", "أحسن", "تحسنت", "أحسن بكثير", "أفضل بكثير", "أحسن الحمد لله"),
    ("نفس الحالة", "نفس الشي", "نفس الشيء", "زي ما انا", "مثل ما انا", "ما تغير", "كما هي",
     "نفسه", "متل ما انا"),
    ("أسوأ", "أسوء", "اسوا", "أتعب", "أوحش", "أسوأ من قبل", "زاد التعب"),
    ("دائما", "دائماً", "على طول", "كل مرة", "كل الوقت", "دوم", "ديما", "طول الوقت"),
    ("غالبا", "غالباً", "معظم الوقت", "أغلب الوقت", "في الغالب", "كثير"),
    ("أحيانا", "أحياناً", "بعض الأحيان", "مرات", "ساعات", "بعض المرات", "احيان"),
    ("نادرا", "نادراً", "قليل", "مرة مرة", "شوي", "قليلا"),
    ("أبدا", "أبداً", "ولا مرة", "مطلقا", "نهائيا", "ابد", "ما صار"),
    ("راض", "راضي", "راضية", "مرتاح", "مبسوط", "مبسوطة", "عاجبني"),
    ("غير راض", "غير راضي", "مش راضي", "مو راضي", "مو مرتاح", "زعلان", "مش مبسوط"),
    ("صباحا", "الصبح", "صباح", "الصباح", "الفجر", "بدري"),
    ("مساء", "مساءً", "المسا", "المساء", "بالليل", "العصر", "الليل"),
    ("نعم", "ايوه", "أيوه", "اي", "إي", "أجل", "بلى", "صح"),
    ("لا", "لأ", "كلا", "لا والله"),
)  # fmt: skip


def _build() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for group in _GROUPS:
        for word in group:
            key = normalize(word)
            # A word in two groups keeps the first group's meaning ("جيد" is not "جيد جدا").
            table.setdefault(key, tuple(w for w in group if normalize(w) != key))
    return table


_TABLE = _build()


def synonyms_for(option_text: str) -> tuple[str, ...]:
    """The other ways to say ``option_text`` (empty when it is not a usual option word)."""
    return _TABLE.get(normalize(option_text), ())
