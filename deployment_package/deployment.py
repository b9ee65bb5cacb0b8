"""UbiOps deployment: profile the main face of a portrait with the packaged FaceProfileModel.

UbiOps puts this folder and libraries/ on sys.path, so model1.pkl (built by
scripts/build_model.py) unpickles against libraries/face_profile.
"""

import os
import shutil
import tempfile
import weakref

import cv2
import joblib
from face_profile import FaceProfileModel, PublicError
from face_profile.memory import keep_freed_memory

MODEL_FILE = "model1.pkl"
OPTIONAL_INPUTS = ("sampling_strategy", "align_face", "num_attempts")


class Deployment:
    def __init__(self, base_directory, context):
        """Load the model once per instance and make a private folder for its output image."""
        # One OpenCV thread, as on UbiOps, where an instance has its type's share of a vCPU (0.125 by
        # default) and OpenCV sizes its pool by that quota. A pool of this machine's two cores cost
        # each 512 px request ~1 ms more CPU and saved it no time (BENCHMARKS.md, Instances).
        cv2.setNumThreads(1)
        keep_freed_memory()  # a 2000 px request 46 -> 30 ms: no fresh pages faulted in for each one
        model_path = os.path.join(base_directory, MODEL_FILE)
        if not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"{model_path} is missing; build it with `python scripts/build_model.py`"
            )
        self.model = joblib.load(model_path)
        if not isinstance(self.model, FaceProfileModel):
            raise TypeError(f"{MODEL_FILE} holds a {type(self.model).__name__}, not a FaceProfileModel")
        output_dir = tempfile.mkdtemp(prefix="face_profile_")
        weakref.finalize(self, shutil.rmtree, output_dir, ignore_errors=True)
        self._annotated_path = os.path.join(output_dir, "annotated.jpg")
        print(f"Loaded {self.model.model_id}")

    def request(self, data, context):
        """Profile data["img"]; the annotated image is written over the previous request's."""
        if not data.get("img"):
            raise PublicError("Input 'img' is required: upload a portrait image.")
        options = {name: data[name] for name in OPTIONAL_INPUTS if data.get(name) is not None}
        profile = self.model.predict(data["img"], **options)

        annotated_path = None
        if profile.annotated_image is not None:
            # One file, rewritten: UbiOps has copied the previous request's output by now. A new file
            # per request (and removing the last) cost ~0.3 ms where the file system was slow to make
            # files (BENCHMARKS.md, Face profile).
            annotated_path = self._annotated_path
            profile.annotated_image.save(annotated_path, format="JPEG", quality=90)
        return {**profile.fields, "annotated_img": annotated_path}
