"""A stand-in for the face profile in the web page's tests (tests/test_web_page.py), so that they pass
whatever `deployment_package/` holds (a user's own model, say): the face profile's input fields and
widgets, four of its output fields, and the portrait itself back as the annotated image. It reads no
more of the image than its first bytes: a package here needs nothing but the standard library."""

import os
import shutil
import tempfile


class UnreadableImage(Exception):
    public_error_message = "The file is not a readable image (a JPEG portrait is expected)"


class Deployment:
    def __init__(self):
        self.output = tempfile.mkdtemp()

    def request(self, data):
        with open(data["img"], "rb") as image:
            if image.read(3) != b"\xff\xd8\xff":
                raise UnreadableImage()
        annotated = os.path.join(self.output, "annotated.jpg")
        shutil.copyfile(data["img"], annotated)
        return {"face_found": True, "fwhr": 1.93, "skin_tone_cheeks": "#c08a6e", "annotated_img": annotated}
