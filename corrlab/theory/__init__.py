"""Exact theory the simulated bench and ``corrlab simulate`` stand on, below every layer.

``qubits``: two-qubit and N-qubit states, their samplers, local hidden variable bounds and the
macroscopic Bell criteria; ``ensembles``: two atomic ensembles under S1z S2z (entropy, log
negativity, joint distributions); ``ensembles_figures``: their plots. numpy and scipy only;
nothing here imports instruments, protocols, acquisition or analysis.
"""
