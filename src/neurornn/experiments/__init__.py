"""Experiments of the seeds, as functions (also ``neurornn experiment NAME``)."""

from .sernn import SeRNNConfig, run_sernn, run_sernn_sweep
from .sign_tca import SignTCAConfig, run_sign_tca
from .teacher_student import TeacherStudentConfig, infer_from_recording, run_teacher_student

__all__ = [
    "SeRNNConfig",
    "SignTCAConfig",
    "TeacherStudentConfig",
    "infer_from_recording",
    "run_sernn",
    "run_sernn_sweep",
    "run_sign_tca",
    "run_teacher_student",
]
