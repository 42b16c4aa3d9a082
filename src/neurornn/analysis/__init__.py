"""Analysis: activity, PCA, fixed points, performance, report (and connectivity analyses).

Importing this package does not import matplotlib (the plotting functions do, when called).
"""

# Dynamical-systems analysis, performance and report.
from .activity import Activity, record_activity
from .cycles import Cycles, detect_cycles
from .fixed_points import FixedPointFinder, FixedPoints, sample_states, step_jacobians
from .geometry import describe_geometry
from .pca import PCA, plot_explained_variance, plot_fixed_points, plot_trajectories
from .performance import (
    PsychometricCurve,
    decision_choices,
    fit_psychometric,
    plot_psychometric,
    plot_trials,
    psychometric_curve,
    validation_score,
)
from ..runs.report import render_report, write_report

# The pipeline: registered analyses, run from Python (analyze_run) and by `neurornn analyze`.
from .pipeline import (
    ANALYSES,
    AnalysisOptions,
    AnalysisResult,
    Context,
    analysis_names,
    analyze_run,
    register_analysis,
    unregister_analysis,
)

# Task variance of multitask networks (Yang 2019); importing the module registers the analysis.
from .task_variance import TaskVariance, cluster_units, fractional_variance, lesion_clusters, task_variance

# Connectivity: graph metrics, connectivity inference (teacher-student), tensor components.
from .graph import (
    adjacency,
    characteristic_path_length,
    clustering_coefficients,
    communities,
    global_efficiency,
    graph_metrics,
    graph_metrics_history,
    modularity,
    plot_connectivity,
    plot_graph_history,
    random_graphs,
    shortest_path_lengths,
    small_worldness,
    weight_distance,
)
from .graph_run import analyze_run_graph
from .inference import (
    RecordedTask,
    TeacherTask,
    load_recording,
    make_network,
    plot_recovery,
    plot_recovery_history,
    recovery_history,
    recovery_scores,
    student_like,
    two_area_config,
)
# Population analyses: decoding, mixed selectivity, energy use, similarity (each registers its analysis).
from .decoding import Decoding, decode, decode_conditions, plot_decoding
from .energy import energy_history, energy_use, plot_energy_history, wiring_cost
from .mixed_selectivity import (MixedSelectivity, ccgp, mixed_selectivity, period_responses,
                                plot_mixed_selectivity, shattering_dimensionality, task_variables)
from .similarity import (compare_runs, delay_embed, dmd_operator, dsa, linear_cka, mds, pairwise_distances,
                         plot_similarity, procrustes_distance, vector_field_procrustes)
from .tca import (
    TCAResult,
    activity_tensor,
    fit_tca,
    plot_rank_sweep,
    plot_tca,
    rank_sweep,
    trial_factor_auc,
    trial_factor_dprime,
)

__all__ = [
    "ANALYSES",
    "Activity",
    "AnalysisOptions",
    "AnalysisResult",
    "Context",
    "Cycles",
    "FixedPointFinder",
    "FixedPoints",
    "PCA",
    "PsychometricCurve",
    "analysis_names",
    "analyze_run",
    "decision_choices",
    "describe_geometry",
    "detect_cycles",
    "fit_psychometric",
    "plot_explained_variance",
    "plot_fixed_points",
    "plot_psychometric",
    "plot_trajectories",
    "plot_trials",
    "psychometric_curve",
    "record_activity",
    "register_analysis",
    "render_report",
    "sample_states",
    "step_jacobians",
    "TaskVariance",
    "cluster_units",
    "fractional_variance",
    "lesion_clusters",
    "task_variance",
    "unregister_analysis",
    "validation_score",
    "write_report",
]

__all__ += [  # connectivity
    "RecordedTask",
    "TCAResult",
    "TeacherTask",
    "activity_tensor",
    "adjacency",
    "analyze_run_graph",
    "characteristic_path_length",
    "clustering_coefficients",
    "communities",
    "fit_tca",
    "global_efficiency",
    "graph_metrics",
    "graph_metrics_history",
    "load_recording",
    "make_network",
    "modularity",
    "plot_connectivity",
    "plot_graph_history",
    "plot_rank_sweep",
    "plot_recovery",
    "plot_recovery_history",
    "plot_tca",
    "random_graphs",
    "rank_sweep",
    "recovery_history",
    "recovery_scores",
    "shortest_path_lengths",
    "small_worldness",
    "student_like",
    "trial_factor_auc",
    "trial_factor_dprime",
    "two_area_config",
    "weight_distance",
]

__all__ += [  # population analyses
    "Decoding",
    "MixedSelectivity",
    "ccgp",
    "compare_runs",
    "decode",
    "decode_conditions",
    "delay_embed",
    "dmd_operator",
    "dsa",
    "energy_history",
    "energy_use",
    "linear_cka",
    "mds",
    "mixed_selectivity",
    "pairwise_distances",
    "period_responses",
    "plot_decoding",
    "plot_energy_history",
    "plot_mixed_selectivity",
    "plot_similarity",
    "procrustes_distance",
    "shattering_dimensionality",
    "task_variables",
    "vector_field_procrustes",
    "wiring_cost",
]
