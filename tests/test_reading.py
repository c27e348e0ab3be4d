"""Answers from the reader's evidence (with a fake reader: the logic, not the model): the best
sentence is quoted, the short answer leads, yes/no questions are settled, weak evidence is
declined, and every offset slices the document exactly."""

from __future__ import annotations

import pytest
from test_answer import FakeGenerator

from qa import Engine, Index
from qa.answer.pipeline import Options
from qa.answer.reading import is_yes_no
from qa.models.reader import Reading, SentenceScore

READER_EVIDENCE = Options(evidence="reader")


class FakeReader:
    """Scores a sentence by the words it shares with the question over its length, with the
    answer span = `spans[question]` inside the best sentence, and p_yes from a table."""

    def __init__(self, spans=None, yes=None, answer=0.5, yes_no=0.8, **per_answer) -> None:
        self.spans = spans or {}
        self.yes = yes or {}
        self.thresholds = {"answer": answer, "yes_no_confidence": yes_no, "support": 0.9}
        self.thresholds.update(per_answer)  # yes_min, no_min
        self.calls = 0

    def support_many(self, question, pairs):
        """The share of the claim's words the cited sentence contains."""
        out = []
        for claim, sentence in pairs:
            words = {w.strip("?.,[]1").lower() for w in claim.split()} - {""}
            have = {w.strip("?.,").lower() for w in sentence.split()}
            out.append(len(words & have) / max(1, len(words)))
        return out

    def read(self, question, passages):
        self.calls += 1
        q = {w.strip("?.,").lower() for w in question.split() if len(w) > 3}
        out = []
        for text, spans in passages:
            scores = []
            for i, (a, b) in enumerate(spans):
                words = {w.strip("?.,").lower() for w in text[a:b].split()}
                scores.append(SentenceScore(i, a, b, min(1.0, len(q & words) / max(1, len(q)))))
            best = max(scores, key=lambda s: s.prob, default=None)
            span = (0, 0)
            phrase = self.spans.get(question)
            if best is not None and phrase and phrase in text[best.start : best.end]:
                start = text.index(phrase, best.start)
                span = (start, start + len(phrase))
            p_yes = self.yes.get(question, 0.5)
            out.append(Reading(tuple(scores), span[0], span[1], 0.9, p_yes, 1 - p_yes))
        return out


@pytest.fixture
def index(docs, settings, fake_embedder):
    index = Index.build([docs], settings.index_dir, settings=settings, embedder=fake_embedder)
    yield index
    index.close()


def test_yes_no_questions_are_recognised():
    assert is_yes_no("Did Ford deny the Xiaomi report?") and is_yes_no("Is Etna active?")
    assert not is_yes_no("Who is the CEO of Ford?") and not is_yes_no("Where is Etna?")


def test_the_short_answer_leads_and_slices_the_document(index):
    reader = FakeReader(spans={"Which river is the longest in Africa?": "The Nile"})
    engine = Engine(index=index, reader=reader)
    answer = engine.ask("Which river is the longest in Africa?")
    assert not answer.refused and answer.mode == "extractive"
    assert answer.short is not None and answer.short.text == "The Nile"
    text = index.document_text(answer.short.source)
    assert text[answer.short.start : answer.short.end] == "The Nile"
    (c,) = answer.citations
    assert c.quote == "The Nile is the longest river in Africa."
    assert text[c.start : c.end] == c.quote and c.start <= answer.short.start < c.end
    assert answer.text.startswith("The Nile. “The Nile is the longest river in Africa")
    assert answer.to_dict()["short"]["text"] == "The Nile"


def test_a_short_answer_that_only_restates_the_question_is_not_shown(index):
    q = "Which river is the longest in Africa?"
    # the reader's span is "Africa", a word of the question: the sentence is quoted alone
    answer = Engine(index=index, reader=FakeReader(spans={q: "Africa"})).ask(q)
    assert not answer.refused and answer.short is None
    assert answer.text.startswith("The Nile is the longest river in Africa")


def test_a_yes_no_question_is_answered_yes_or_no_only_when_confident(index):
    q = "Is Mount Etna an active volcano on Sicily?"
    sure = Engine(index=index, reader=FakeReader(yes={q: 0.95})).ask(q)
    assert sure.short.kind == "yes" and sure.text.startswith("Yes. “Mount Etna is")
    assert Engine(index=index, reader=FakeReader(yes={q: 0.03})).ask(q).text.startswith("No.")
    unsure = Engine(index=index, reader=FakeReader(yes={q: 0.6})).ask(q)
    assert unsure.short is None and unsure.text.startswith("Mount Etna is an active volcano")


def test_yes_and_no_each_need_their_own_confidence(index):
    q = "Is Mount Etna an active volcano on Sicily?"

    def asked(p_yes):
        reader = FakeReader(yes={q: p_yes}, yes_no=0.8, yes_min=0.8, no_min=0.97)
        return Engine(index=index, reader=reader).ask(q)

    assert asked(0.9).short.kind == "yes"
    no = asked(0.1)  # sure enough for a "yes", not for a "no": the quote alone
    assert no.short is None and no.text.startswith("Mount Etna is an active volcano")
    assert asked(0.02).text.startswith("No.")


def test_per_answer_thresholds_are_calibrated_apart_and_conservatively():
    from qa.train.evaluate import yes_no_class_thresholds

    # rows (label, p_yes, p_no), label 0 = yes: "yes" is said right from 0.6 on; "no" is
    # right in one set and wrong half the time in the other until 0.9
    easy = [(0, 0.7, 0.3)] * 20 + [(1, 0.2, 0.8)] * 20
    hard = [(0, 0.8, 0.2)] * 10 + [(1, 0.25, 0.75)] * 5 + [(0, 0.25, 0.75)] * 5
    hard += [(1, 0.05, 0.95)] * 12
    t = yes_no_class_thresholds({"easy": easy, "hard": hard})
    assert t["yes"] == 0.5 and t["no"] == 0.76
    # three lucky answers are not enough: right / (said + 1) < 0.9
    assert yes_no_class_thresholds({"few": [(0, 0.9, 0.1)] * 3}) == {"yes": 1.0, "no": 1.0}


def test_weak_evidence_is_declined_with_the_readers_threshold_when_it_chooses(index):
    reader = FakeReader(answer=0.9)
    q = "Which river is the longest in Africa?"
    answer = Engine(index=index, reader=reader).ask(q, options=READER_EVIDENCE)
    assert answer.refused and answer.citations == () and answer.short is None
    assert reader.calls == 1
    # by default the heuristics decide answerability; the reader only finds the short answer
    assert not Engine(index=index, reader=reader).ask(q).refused


def test_the_reader_can_choose_the_evidence(index):
    """With reader_evidence the reader's probabilities rank the sentences."""
    q = "Which river is the longest in Africa?"
    reader = FakeReader(spans={q: "The Nile"})
    answer = Engine(index=index, reader=reader).ask(q, options=READER_EVIDENCE)
    assert answer.citations[0].quote == "The Nile is the longest river in Africa."
    assert answer.short.text == "The Nile" and answer.claims[0].support == 0.75  # 3 of 4


def test_model_mode_gets_the_readers_best_sentence_and_keeps_its_short_answer(index):
    q = "Which river is the longest in Africa?"
    reader = FakeReader(spans={q: "The Nile"})
    gen = FakeGenerator(lambda prompt: "The Nile is the longest river in Africa [1].")
    answer = Engine(index=index, reader=reader).ask(q, mode="llm", model=gen)
    assert answer.mode == "llm" and "The Nile is the longest river in Africa." in gen.prompts[0]
    assert answer.short is not None and answer.short.text == "The Nile"
    assert answer.short.citation == answer.citations[0].n


def test_the_chat_shows_the_short_answer_in_bold_and_the_cli_json_has_it(index, tmp_path):
    from qa.web.chat import ChatApp

    q = "Which river is the longest in Africa?"
    app = ChatApp(Engine(index=index, reader=FakeReader(spans={q: "The Nile"})))
    final = list(app.respond(q, []))[-1]
    assert "<b>The Nile</b>. “The Nile is the longest river in Africa" in final[2]
    assert final[1][-1].answer.to_dict()["short"]["kind"] == "span"


def test_a_model_claim_the_reader_does_not_support_falls_back_to_the_quote(index, monkeypatch):
    """The lexical check is made to accept everything; the reader's check still rejects a
    claim its cited sentence does not support, and the answer becomes the extractive quote.
    With `claim_check="lexical"` the claim stands."""
    import qa.answer.verify as verify

    monkeypatch.setattr(verify, "unsupported", lambda *a, **k: [])
    monkeypatch.setattr(verify, "SUPPORT_MIN", 0.0)
    monkeypatch.setattr(verify, "TOPIC_RATIO", 0.0)
    q = "Which river is the longest in Africa?"
    gen = FakeGenerator(lambda prompt: "The Amazon is the longest river in Africa [1].")
    engine = Engine(index=index, reader=FakeReader(spans={q: "The Nile"}))
    checked = Options(evidence="reader", claim_check="reader")
    answer = engine.ask(q, mode="llm", model=gen, options=checked)
    assert answer.mode == "extractive" and "Amazon" not in answer.text
    assert answer.citations[0].quote == "The Nile is the longest river in Africa."
    lexical = Options(evidence="reader", claim_check="lexical")
    answer = engine.ask(q, mode="llm", model=gen, options=lexical)
    assert answer.mode == "llm" and "Amazon" in answer.text


@pytest.mark.parametrize("evidence", ["heuristic", "learned", "reader"])
def test_the_reader_checks_model_claims_whoever_chose_the_evidence(index, monkeypatch, evidence):
    """`claim_check` is independent of `evidence`: with "reader" every verified model answer
    goes through the reader's support check (here made to reject), with "lexical" never."""
    import qa.answer.pipeline as pipeline

    asked = []

    def rejects(reader, question, checked, thresholds):
        asked.append(question)
        return False

    monkeypatch.setattr(pipeline, "_reader_supports", rejects)
    q = "Which river is the longest in Africa?"
    gen = FakeGenerator(lambda prompt: "The Nile is the longest river in Africa [1].")
    engine = Engine(index=index, reader=FakeReader(spans={q: "The Nile"}))
    checked = Options(evidence=evidence, claim_check="reader")
    answer = engine.ask(q, mode="llm", model=gen, options=checked)
    assert asked == [q] and answer.mode == "extractive"
    lexical = Options(evidence=evidence, claim_check="lexical")
    answer = engine.ask(q, mode="llm", model=gen, options=lexical)
    assert asked == [q] and answer.mode == "llm"


def test_a_sentence_that_is_a_quotation_is_not_quoted_twice(tmp_path, settings, fake_embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "guide.txt").write_text(
        "“Etna erupts every single year,” the volcano guide said. Cats sleep in the sun.",
        encoding="utf-8",
    )
    s = settings.with_(index_dir=tmp_path / "index")
    with Index.build([folder], s.index_dir, settings=s, embedder=fake_embedder) as index:
        q = "How often does Etna erupt, says the volcano guide?"
        answer = Engine(index=index, reader=FakeReader(spans={q: "every single year"})).ask(q)
    assert answer.short is not None and answer.short.text == "every single year"
    assert answer.text.startswith("Every single year. “Etna erupts"), answer.text
    assert "““" not in answer.text
