"""Lay names of every gold diagnosis in English, Spanish, French, German, Portuguese and Italian
(``data/leak/foreign.yaml`` and ``data/knowledge/synonyms.yaml``): each one, said by the patient,
is blocked when it names the case's gold, with or without accents; ordinary symptom talk in each
language still passes for every gold. Also the articles and prepositions of a foreign name may
differ from the listed one ("ataque de corazón" for "ataque al corazón")."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
import yaml

import clinic_env
from clinic_env.patients import LeakGuard
from clinic_env.patients.leak_guard import DIAGNOSIS
from clinic_env.patients.terms import FOREIGN_FUNCTION_WORDS, load_synonyms, make_term

_DATA = Path(clinic_env.__file__).resolve().parent / "data"
_FILE = yaml.safe_load((_DATA / "leak" / "foreign.yaml").read_text(encoding="utf-8"))
FOREIGN: dict[str, list[str]] = {str(code): [str(n) for n in names or ()] for code, names in _FILE["foreign"].items()}
#: Names that are everyday words elsewhere: only their phrases count.
ORDINARY_WORDS = {str(w).casefold() for w in _FILE["ordinary_words"]}

# Lay names this suite pins (a sample per language; every name in foreign.yaml is tested below).
PROBES = [
    ("I21.0", "Ataque al corazón, that's what my cousin said."),
    ("I21.0", "Honestly I think it's my ticker giving out, a coronary."),
    ("I21.0", "Mi primo dice que es un ataque de corazón."),
    ("I21.0", "Ma femme pense que c'est une crise cardiaque."),
    ("I21.0", "Meine Frau meint, es ist ein Herzanfall."),
    ("I21.0", "Acho que é um ataque do coração."),
    ("I21.0", "Secondo me è un attacco di cuore."),
    ("I63.9", "Creo que le ha dado un derrame."),
    ("I63.9", "C'est peut-être une attaque cérébrale."),
    ("I63.9", "Vielleicht ein Hirnschlag, wie bei meinem Onkel."),
    ("I63.9", "Parece uma trombose, doutor."),
    ("I63.9", "Temo un colpo apoplettico."),
    ("J10.1", "Creo que es la gripe."),
    ("K35.8", "Seguro que es el apéndice."),
    ("G45.9", "My sister said it sounded like a mini-stroke."),
    ("I50.1", "My neighbour had water on the lungs just like this."),
    ("I26.9", "Could it be a blood clot in the lung?"),
    ("B02.9", "Mon médecin pense que j'ai un zona."),
    ("M10.0", "Es otra crisis de gota, como el año pasado."),
]

ORDINARY: dict[str, list[str]] = {
    "es": [
        "Me duele mucho el pecho desde anoche.",
        "El dolor se me va al brazo izquierdo y a la mandíbula.",
        "Tengo fiebre desde hace dos días y escalofríos.",
        "Me cuesta respirar cuando subo las escaleras.",
        "He vomitado tres veces esta mañana.",
        "Me duele la barriga, sobre todo en el lado derecho.",
        "Tengo la pierna hinchada y caliente.",
        "Me duele la cabeza y la luz me molesta.",
        "Estoy muy cansado y no tengo ganas de comer.",
        "Tengo tos con flemas verdes.",
        "Sudé muchísimo y me mareé.",
        "El corazón me late muy rápido a ratos.",
        "No puedo mover bien el brazo derecho.",
        "Me escuece al orinar y voy al baño a cada rato.",
        "Tengo diarrea desde el martes.",
        "Me duele la garganta y me cuesta tragar.",
        "Tomo pastillas para la tensión todas las mañanas.",
        "Mi padre murió joven, del corazón creo.",
        "Fumo un paquete al día desde hace veinte años.",
        "Bebo un par de cervezas los fines de semana.",
        "El dolor empezó de golpe mientras trabajaba.",
        "Es un dolor opresivo, como un peso encima.",
        "Me pica la piel y tengo una erupción en el costado.",
        "Tengo náuseas y no he podido desayunar.",
        "Me he desmayado una vez en el baño.",
        "Veo borroso con el ojo derecho.",
        "Me duele la espalda y se me duermen las piernas.",
        "Mi hijo tiene fiebre y está muy irritable.",
        "La regla me vino hace seis semanas.",
        "No tengo alergias a ningún medicamento.",
        "El dolor es de ocho sobre diez.",
        "Me siento débil y con la boca seca.",
    ],
    "fr": [
        "J'ai très mal à la poitrine depuis hier soir.",
        "La douleur descend dans le bras gauche et la mâchoire.",
        "J'ai de la fièvre depuis deux jours avec des frissons.",
        "Je suis essoufflé quand je monte les escaliers.",
        "J'ai vomi trois fois ce matin.",
        "J'ai mal au ventre, surtout à droite.",
        "Ma jambe est gonflée et chaude.",
        "J'ai mal à la tête et la lumière me gêne.",
        "Je suis très fatigué et je n'ai pas d'appétit.",
        "Je tousse et je crache des glaires vertes.",
        "J'ai beaucoup transpiré et j'ai eu la tête qui tourne.",
        "Mon cœur bat très vite par moments.",
        "Je n'arrive plus à bien bouger le bras droit.",
        "Ça me brûle quand je fais pipi et j'y vais souvent.",
        "J'ai la diarrhée depuis mardi.",
        "J'ai mal à la gorge et j'ai du mal à avaler.",
        "Je prends un comprimé pour la tension tous les matins.",
        "Mon père est mort jeune, du cœur je crois.",
        "Je fume un paquet par jour depuis vingt ans.",
        "Je bois deux ou trois bières le week-end.",
        "La douleur a commencé d'un coup au travail.",
        "C'est une douleur qui serre, comme un poids.",
        "J'ai des démangeaisons et des boutons sur le côté.",
        "J'ai des nausées et je n'ai pas pu déjeuner.",
        "Je me suis évanoui une fois dans la salle de bain.",
        "Je vois flou de l'œil droit.",
        "J'ai mal au dos et des fourmis dans les jambes.",
        "Mon fils a de la fièvre et pleure beaucoup.",
        "Mes règles datent d'il y a six semaines.",
        "Je n'ai aucune allergie aux médicaments.",
        "La douleur est à huit sur dix.",
        "Je me sens faible et j'ai la bouche sèche.",
    ],
    "de": [
        "Ich habe seit gestern Abend starke Schmerzen in der Brust.",
        "Der Schmerz zieht in den linken Arm und in den Kiefer.",
        "Ich habe seit zwei Tagen Fieber und Schüttelfrost.",
        "Beim Treppensteigen bekomme ich keine Luft.",
        "Ich habe heute Morgen dreimal erbrochen.",
        "Mir tut der Bauch weh, vor allem rechts.",
        "Mein Bein ist geschwollen und warm.",
        "Ich habe Kopfschmerzen und das Licht stört mich.",
        "Ich bin sehr müde und habe keinen Appetit.",
        "Ich huste grünen Schleim ab.",
        "Ich habe stark geschwitzt und mir war schwindelig.",
        "Mein Herz schlägt manchmal sehr schnell.",
        "Ich kann den rechten Arm nicht richtig bewegen.",
        "Es brennt beim Wasserlassen und ich muss ständig auf die Toilette.",
        "Ich habe seit Dienstag Durchfall.",
        "Mir tut der Hals weh und das Schlucken fällt schwer.",
        "Ich nehme jeden Morgen eine Tablette für den Blutdruck.",
        "Mein Vater ist jung gestorben, am Herzen glaube ich.",
        "Ich rauche seit zwanzig Jahren eine Schachtel am Tag.",
        "Am Wochenende trinke ich ein paar Bier.",
        "Der Schmerz kam ganz plötzlich bei der Arbeit.",
        "Es ist ein drückender Schmerz, wie ein Gewicht auf der Brust.",
        "Die Haut juckt und ich habe Bläschen an der Seite.",
        "Mir ist übel und ich konnte nicht frühstücken.",
        "Ich bin einmal im Badezimmer ohnmächtig geworden.",
        "Ich sehe auf dem rechten Auge verschwommen.",
        "Ich habe Rückenschmerzen und die Beine kribbeln.",
        "Mein Sohn hat Fieber und ist sehr unruhig.",
        "Meine letzte Periode war vor sechs Wochen.",
        "Ich habe keine Allergien gegen Medikamente.",
        "Der Schmerz ist acht von zehn.",
        "Ich fühle mich schwach und habe einen trockenen Mund.",
    ],
    "pt": [
        "Estou com muita dor no peito desde ontem à noite.",
        "A dor vai para o braço esquerdo e para o queixo.",
        "Estou com febre há dois dias e com calafrios.",
        "Fico sem fôlego quando subo as escadas.",
        "Vomitei três vezes hoje de manhã.",
        "Dói-me a barriga, sobretudo do lado direito.",
        "A minha perna está inchada e quente.",
        "Estou com dor de cabeça e a luz incomoda.",
        "Estou muito cansado e sem vontade de comer.",
        "Tenho tosse com catarro verde.",
        "Suei muito e fiquei tonto.",
        "O coração às vezes bate muito depressa.",
        "Acho que tenho uma gota de sangue no lenço.",
        "Não consigo mexer bem o braço direito.",
        "Arde quando faço xixi e vou à casa de banho toda a hora.",
        "Estou com diarreia desde terça-feira.",
        "Dói-me a garganta e custa engolir.",
        "Tomo um comprimido para a tensão todas as manhãs.",
        "O meu pai morreu novo, do coração acho eu.",
        "Fumo um maço por dia há vinte anos.",
        "Bebo umas cervejas ao fim de semana.",
        "A dor começou de repente no trabalho.",
        "É uma dor de aperto, como um peso em cima.",
        "A pele está a fazer comichão e tenho bolhas de um lado.",
        "Estou enjoado e não consegui tomar o pequeno-almoço.",
        "Desmaiei uma vez na casa de banho.",
        "Vejo tudo desfocado do olho direito.",
        "Dói-me as costas e sinto formigueiro nas pernas.",
        "O meu filho está com febre e muito irritado.",
        "A minha menstruação veio há seis semanas.",
        "Não tenho alergia a nenhum remédio.",
        "A dor é oito em dez.",
        "Sinto-me fraco e com a boca seca.",
    ],
    "it": [
        "Ho un forte dolore al petto da ieri sera.",
        "Il dolore va al braccio sinistro e alla mascella.",
        "Ho la febbre da due giorni e i brividi.",
        "Mi manca il fiato quando faccio le scale.",
        "Ho vomitato tre volte stamattina.",
        "Mi fa male la pancia, soprattutto a destra.",
        "La gamba è gonfia e calda.",
        "Ho mal di testa e la luce mi dà fastidio.",
        "Sono molto stanco e non ho appetito.",
        "Ho la tosse con catarro verde.",
        "Ho sudato tantissimo e mi girava la testa.",
        "Il cuore a volte mi batte fortissimo.",
        "Non riesco a muovere bene il braccio destro.",
        "Mi brucia quando faccio pipì e ci vado spesso.",
        "Ho la diarrea da martedì.",
        "Mi fa male la gola e faccio fatica a deglutire.",
        "Prendo una pastiglia per la pressione ogni mattina.",
        "Mio padre è morto giovane, di cuore credo.",
        "Fumo un pacchetto al giorno da vent'anni.",
        "Bevo qualche birra nel fine settimana.",
        "Il dolore è iniziato all'improvviso al lavoro.",
        "È un dolore che stringe, come un peso.",
        "Mi prude la pelle e ho delle vescicole sul fianco.",
        "Ho la nausea e non sono riuscito a fare colazione.",
        "Sono svenuto una volta in bagno.",
        "Vedo sfocato con l'occhio destro.",
        "Ho mal di schiena e formicolii alle gambe.",
        "Mio figlio ha la febbre ed è molto irritabile.",
        "Il ciclo mi è venuto sei settimane fa.",
        "Non ho allergie ai farmaci.",
        "Il dolore è otto su dieci.",
        "Mi sento debole e ho la bocca secca.",
    ],
    "en": [
        "My chest has been hurting since last night.",
        "The pain goes into my left arm and my jaw.",
        "I've had a fever for two days with shivers.",
        "I get out of breath going up the stairs.",
        "My heart has been pounding on and off.",
        "I've got a pain in my big toe and I gotta sit down.",
        "I've got a clot of worry in my stomach, I can't eat.",
        "My leg is swollen and warm to touch.",
        "I've had a headache and the light bothers me.",
        "I'm coughing up green phlegm.",
        "It burns when I pass water and I go all the time.",
        "I fainted once in the bathroom.",
        "My dad died young, it was his heart I think.",
        "I smoke a pack a day.",
        "My throat hurts when I swallow.",
        "The pain came on suddenly at work.",
        "It's a heavy pressure, like a weight on my chest.",
        "My skin is itchy and there's a rash on my side.",
        "I feel sick and I couldn't face breakfast.",
        "My vision is blurry in the right eye.",
        "My back hurts and my legs tingle.",
        "My son has a temperature and he's very grizzly.",
        "My period came six weeks ago.",
        "I'm not allergic to any medicines.",
        "It's eight out of ten.",
        "I feel weak and my mouth is dry.",
        "I had diarrhoea since Tuesday.",
        "I've been sweating a lot and felt dizzy.",
        "My lungs feel tight when I breathe in.",
        "There's a pain in my heart area when I lie flat.",
        "My blood pressure pills are the only ones I take.",
    ],
    "nl": [
        "Ik heb sinds gisteravond veel pijn op de borst.",
        "De pijn trekt naar mijn linkerarm en mijn kaak.",
        "Ik heb al twee dagen koorts en koude rillingen.",
        "Ik ben kortademig als ik de trap op loop.",
        "Ik heb vanochtend drie keer overgegeven.",
        "Mijn buik doet pijn, vooral rechts.",
        "Mijn been is dik en warm.",
        "Ik heb hoofdpijn en het licht stoort me.",
        "Ik ben erg moe en heb geen zin in eten.",
        "Ik hoest groen slijm op.",
        "Ik zweette enorm en werd duizelig.",
        "Mijn hart klopt soms heel snel.",
        "Ik kan mijn rechterarm niet goed bewegen.",
        "Het brandt bij het plassen en ik moet steeds naar de wc.",
        "Ik heb sinds dinsdag diarree.",
        "Mijn keel doet pijn en slikken gaat moeilijk.",
        "Ik neem elke ochtend een pil voor mijn bloeddruk.",
        "Mijn vader is jong overleden, aan zijn hart denk ik.",
        "Ik rook al twintig jaar een pakje per dag.",
        "In het weekend drink ik een paar biertjes.",
        "De pijn begon ineens op mijn werk.",
        "Het is een drukkende pijn, als een gewicht op mijn borst.",
        "Mijn huid jeukt en ik heb blaasjes op mijn zij.",
        "Ik ben misselijk en kon niet ontbijten.",
        "Ik ben een keer flauwgevallen in de badkamer.",
        "Ik zie wazig met mijn rechteroog.",
        "Ik heb rugpijn en tintelingen in mijn benen.",
        "Mijn zoon heeft koorts en huilt veel.",
        "Mijn laatste menstruatie was zes weken geleden.",
        "Ik ben nergens allergisch voor.",
        "De pijn is een acht op tien.",
        "Ik voel me slap en mijn mond is droog.",
    ],
    "pl": [
        "Od wczoraj wieczorem bardzo boli mnie w klatce piersiowej.",
        "Ból promieniuje do lewej ręki i do szczęki.",
        "Od dwóch dni mam gorączkę i dreszcze.",
        "Brakuje mi tchu, kiedy wchodzę po schodach.",
        "Dziś rano wymiotowałem trzy razy.",
        "Boli mnie brzuch, zwłaszcza po prawej stronie.",
        "Noga jest spuchnięta i ciepła.",
        "Boli mnie głowa i razi mnie światło.",
        "Jestem bardzo zmęczony i nie mam apetytu.",
        "Kaszlę i odkrztuszam zieloną wydzielinę.",
        "Bardzo się spociłem i zakręciło mi się w głowie.",
        "Serce czasem bije mi bardzo szybko.",
        "Nie mogę dobrze ruszać prawą ręką.",
        "Piecze mnie przy oddawaniu moczu i ciągle chodzę do toalety.",
        "Mam biegunkę od wtorku.",
        "Boli mnie gardło i trudno mi przełykać.",
        "Codziennie rano biorę tabletkę na ciśnienie.",
        "Mój ojciec zmarł młodo, chyba na serce.",
        "Palę paczkę dziennie od dwudziestu lat.",
        "W weekendy wypijam kilka piw.",
        "Ból zaczął się nagle w pracy.",
        "To ból uciskający, jak ciężar na piersi.",
        "Swędzi mnie skóra i mam pęcherzyki na boku.",
        "Mam mdłości i nie mogłem zjeść śniadania.",
        "Raz zemdlałem w łazience.",
        "Widzę niewyraźnie na prawe oko.",
        "Boli mnie kręgosłup i mrowią mnie nogi.",
        "Mój syn ma gorączkę i dużo płacze.",
        "Ostatnia miesiączka była sześć tygodni temu.",
        "Nie mam uczuleń na leki.",
        "Ból to osiem na dziesięć.",
        "Czuję się słaby i mam sucho w ustach.",
    ],
}


@pytest.fixture(scope="module")
def guards(cases: list[clinic_env.Case], catalogue: clinic_env.Catalogue) -> dict[str, LeakGuard]:
    """A guard per code of foreign.yaml: a bundled case with that gold, else a bundled case
    rebuilt with that gold (its facts do not use the names)."""
    by_gold: dict[str, clinic_env.Case] = {}
    for case in cases:
        by_gold.setdefault(case.gold_diagnosis, case)
    base = by_gold["M10.0"]
    out = {}
    for code in FOREIGN:
        case = by_gold.get(code) or base.model_copy(update={"gold_diagnosis": code})
        out[code] = LeakGuard(case, catalogue)
    return out


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def _own_words(guard: LeakGuard, name: str) -> bool:
    """Whether the case's own opening or presenting complaint uses the name (then it is allowed)."""
    term = make_term(name)
    return term is not None and "*" in guard._sources(term)


def test_every_code_has_lay_names_in_five_languages() -> None:
    # Every gold lists several foreign names beyond the formal ones (at least one a language on average).
    thin = {code: len(names) for code, names in FOREIGN.items() if len(names) < 5}
    assert not thin, thin


@pytest.mark.parametrize(("code", "text"), PROBES)
def test_probes_blocked(guards: dict[str, LeakGuard], code: str, text: str) -> None:
    result = guards[code].check(text, asked={"sx.chest_pain"})
    assert DIAGNOSIS in result.blocked, text


def test_every_name_blocked_for_its_gold(guards: dict[str, LeakGuard]) -> None:
    """Every name of foreign.yaml and every shipped lay synonym of the code, in a sentence, with
    and without accents, is blocked for a case with that gold."""
    missed = []
    for code, guard in guards.items():
        names = dict.fromkeys([*FOREIGN[code], *load_synonyms().get(code, ())])
        for name in names:
            if name.casefold() in ORDINARY_WORDS or _own_words(guard, name):
                continue
            term = make_term(name)
            # Typed without accents and in lower case (abbreviations keep their case: "tia" is a word).
            plain = _strip_accents(name) if term is not None and term.exact_case else _strip_accents(name).lower()
            for said in (f"{name}, that's what my cousin said.", f"Mi primo dice: {plain}."):
                if DIAGNOSIS not in guard.check(said).blocked:
                    missed.append((code, said))
    assert not missed, missed[:20]


@pytest.mark.parametrize("lang", sorted(ORDINARY))
def test_ordinary_talk_passes_for_every_gold(guards: dict[str, LeakGuard], lang: str) -> None:
    assert len(ORDINARY[lang]) >= 30
    flagged = [(code, s) for code, guard in guards.items() for s in ORDINARY[lang]
               if DIAGNOSIS in guard.check(s, asked=set(guard.case.history)).blocked]
    assert not flagged, flagged


def test_foreign_articles_and_prepositions_may_differ() -> None:
    listed = make_term("ataque al corazón")
    assert listed is not None and listed.words == ("ataque", "corazon")
    assert listed.compact == "ataquealcorazon"
    # A name of one word after them keeps them ("la gripe" stays a phrase), English ones too.
    gripe = make_term("la gripe")
    assert gripe is not None and gripe.words == ("la", "gripe")
    assert not {"no", "die", "in", "on", "a"} & FOREIGN_FUNCTION_WORDS


def test_variant_preposition_blocked(guards: dict[str, LeakGuard]) -> None:
    for text in ("Tuvo un ataque en el corazón.", "Il a eu une attaque au cerveau... non, une crise au cœur, cardiaque."):
        assert DIAGNOSIS in guards["I21.0"].check(text).blocked, text


@pytest.mark.parametrize(("code", "text"), [
    ("B02.9", "Me duele mucho en esta zona del costado."),
    ("B02.9", "Il dolore è in questa zona qui."),
    ("M10.0", "Tenía una gota de sangre en el pañuelo."),
    ("M10.0", "I gotta sit down, my toe is killing me."),
    ("K21.9", "Ich habe oft Sodbrennen nach dem Essen."),
])
def test_ordinary_words_alone_pass(guards: dict[str, LeakGuard], code: str, text: str) -> None:
    assert DIAGNOSIS not in guards[code].check(text, asked=set(guards[code].case.history)).blocked, text
