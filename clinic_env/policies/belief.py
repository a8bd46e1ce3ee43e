"""A naive-Bayes belief over diagnoses, read from the doctor's observation vector.

Likelihoods P(finding | diagnosis) hold every diagnosis to the same standard, so that the scripted
baselines are a yardstick, not a lookup of the bundled cases' answers
(:func:`likelihood_features`): a diagnosis with a knowledge-base profile takes its features from
that profile (history P(present), exam and test P(abnormal), the same numbers the case generator
draws from), any other from the diagnosis catalogue's ``features``; then every diagnosis keeps its
``max_features`` (8) most informative features. A finding a diagnosis does not list has the
background rate ``base``. Only diagnoses plausible for the
patient's age and sex are candidates; the prior is the catalogue prior times the likelihood of the
presenting complaint. Used by the scripted doctors; simplified on purpose (findings are treated as
independent given the diagnosis).
"""

from __future__ import annotations

import numpy as np

from clinic_env.envs.setup import EnvInfo
from clinic_env.schema.catalogue import Catalogue

__all__ = ["MAX_FEATURES", "Belief", "likelihood_features"]

#: Features every diagnosis keeps (the catalogue's median is 9; gold diagnoses once had ~16).
MAX_FEATURES = 8
_P_MIN, _P_MAX = 0.02, 0.97


def likelihood_features(cat: Catalogue, max_features: int = MAX_FEATURES, base: float = 0.05,
                        knowledge: bool = True) -> dict[str, dict[str, float]]:
    """P(finding | diagnosis) for every diagnosis of ``cat``, to one standard.

    Args:
        cat: The catalogue (features naming items outside it are dropped).
        max_features: Features kept per diagnosis: the largest ``|log(p / base)|``.
        base: Background rate of an unlisted finding.
        knowledge: Derive features from the knowledge base where a condition has the code.
    """
    profiles: dict[str, dict[str, float]] = {}
    if knowledge:
        from clinic_env.generate.knowledge import FindingEntry, HistoryEntry, load_knowledge

        for cond in load_knowledge().conditions.values():
            feats: dict[str, float] = {}
            entries: list[tuple[str, HistoryEntry | FindingEntry]] = [
                *cond.history.items(), *cond.exam.items(), *cond.tests.items()]
            for key, entry in entries:
                if entry.sex is None and entry.ages is None:  # only what holds for every patient
                    feats[key] = min(max(entry.p, _P_MIN), _P_MAX)
            profiles.setdefault(cond.code, feats)
    out: dict[str, dict[str, float]] = {}
    for code, dx in cat.diagnoses.items():
        feats = profiles.get(code, dx.features)
        known = {k: p for k, p in feats.items() if k in cat.history or k in cat.tests}
        ranked = sorted(known.items(), key=lambda kv: (-abs(np.log(kv[1] / base)), kv[0]))
        out[code] = dict(ranked[:max_features])
    return out


def _entropy(p: np.ndarray, axis: int = 0) -> np.ndarray:
    q = np.clip(p, 1e-12, 1.0)
    out: np.ndarray = -(p * np.log2(q)).sum(axis=axis)
    return out


class Belief:
    """Posterior over the catalogue's diagnoses given the findings in an observation.

    Args:
        info: The env's description (catalogue and observation layout).
        base: Background probability of a finding a diagnosis does not list.
        max_features: Features kept per diagnosis (see :func:`likelihood_features`).
    """

    def __init__(self, info: EnvInfo, base: float = 0.05, max_features: int = MAX_FEATURES) -> None:
        cat, lay = info.catalogue, info.layout
        self.info = info
        self.codes = cat.diagnosis_codes
        n_h, n_t = lay.n_history, lay.n_tests
        # Columns: history items then tests, matching the observation's hx_* and test_* sections.
        lik = np.full((len(self.codes), n_h + n_t), base, np.float64)
        col = {h: i for i, h in enumerate(cat.history_ids)}
        col.update({t: n_h + i for i, t in enumerate(cat.test_ids)})
        features = likelihood_features(cat, max_features, base)
        for d, code in enumerate(self.codes):
            for key, p in features[code].items():
                lik[d, col[key]] = p
        self.lik = lik
        self.log_yes = np.log(lik)
        self.log_no = np.log1p(-lik)
        self.log_prior = np.log(np.array([cat.diagnoses[c].prior for c in self.codes]))
        self.informative = (lik != base).any(axis=0)
        self.n_h = n_h
        self._plausible_cache: dict[tuple[float, str], np.ndarray] = {}

    def _plausible(self, age: float, sex: str) -> np.ndarray:
        key = (round(age, 1), sex)
        mask = self._plausible_cache.get(key)
        if mask is None:
            cat = self.info.catalogue
            mask = np.array([cat.diagnoses[c].plausible_for(age, sex) for c in self.codes])
            self._plausible_cache[key] = mask
        return mask

    def evidence(self, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observed columns and their values (1 present, 0 absent) from a doctor observation."""
        lay = self.info.layout
        states = lay.hx_states(vector)
        yes, no = states[0] > 0, states[1] > 0
        observed = np.concatenate([yes | no, lay.ordered(vector)])
        values = np.concatenate([yes, lay.abnormal(vector)])
        return observed, values

    def posterior(self, vector: np.ndarray) -> np.ndarray:
        """P(diagnosis | findings) over ``self.codes`` (0 for implausible diagnoses)."""
        lay = self.info.layout
        age = float(vector[lay.AGE]) * 100.0
        sex = "F" if vector[lay.SEX + 1] else "M" if vector[lay.SEX] else "U"
        observed, values = self.evidence(vector)
        yes = observed & values
        no = observed & ~values
        logp = self.log_prior + self.log_yes[:, yes].sum(axis=1) + self.log_no[:, no].sum(axis=1)
        logp = np.where(self._plausible(age, sex), logp, -np.inf)
        logp -= logp.max()
        p: np.ndarray = np.exp(logp)
        return p / float(p.sum())

    def information_gain(self, post: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Expected entropy reduction (bits) of observing each column in ``columns``."""
        # Diagnoses with negligible posterior mass change no entropy term: leave them out.
        keep = post > 1e-9
        post = post[keep] / post[keep].sum()
        lik = self.lik[np.ix_(keep, columns)]
        p_yes = post @ lik
        joint_yes = post[:, None] * lik
        joint_no = post[:, None] * (1.0 - lik)
        h_yes = _entropy(joint_yes / np.maximum(p_yes, 1e-12))
        h_no = _entropy(joint_no / np.maximum(1.0 - p_yes, 1e-12))
        gain: np.ndarray = _entropy(post) - (p_yes * h_yes + (1.0 - p_yes) * h_no)
        return gain
