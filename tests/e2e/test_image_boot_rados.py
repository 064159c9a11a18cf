#!/usr/bin/python3
"""Uploaded images boot with the image store on RADOS: test_image_boot.py's VHD and OVA round
trips (upload, import, RunInstances, export, import again, boot again) against a real
single-node Ceph cluster that the fixture starts (tests/lib/ceph-up.sh) and stops; the agent
fetches the images from nubo-imaged, which reads them from RADOS."""

import compute_env
import image_env
import test_image_boot


class RadosComputeEnv(compute_env.ComputeEnv, image_env.RadosImageEnv):
    """A compute host (ComputeEnv) whose image store is on RADOS (RadosImageEnv)."""


tap = test_image_boot.tap
tap.name = "test_image_boot_rados.py"
tap.fixture = RadosComputeEnv

if __name__ == "__main__":
    tap.main()
