"""A/B testing an image (viewer-request): /experiment-pixel.jpg becomes the control or the treatment pixel.

A viewer whose cookies hold ``X-Experiment-Name=A`` gets the control pixel, ``X-Experiment-Name=B`` the treatment
pixel; one without either is put in a group at random, three in four in the control group. The URL the viewer
sees does not change. Other paths pass untouched.
"""

import random

PIXEL = "/experiment-pixel.jpg"
CONTROL = "/experiment-group/control-pixel.jpg"
TREATMENT = "/experiment-group/treatment-pixel.jpg"
CONTROL_SHARE = 0.75


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if request["uri"] != PIXEL:
        return request
    chosen = None
    for entry in request["headers"].get("cookie", []):  # each Cookie header line is one entry
        if "X-Experiment-Name=A" in entry["value"]:
            chosen = CONTROL
        elif "X-Experiment-Name=B" in entry["value"]:
            chosen = TREATMENT
        if chosen:
            break
    if chosen is None:
        chosen = CONTROL if random.random() < CONTROL_SHARE else TREATMENT
        print("no experiment cookie: picked", chosen)
    request["uri"] = chosen
    return request
