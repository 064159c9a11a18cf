#!/usr/bin/python3
"""The image store's end-to-end tests (test_image_store.py) on the RADOS backend: the same
uploads, imports, exports, refusals, quota, killed gateway and collection, against a real
single-node Ceph cluster that the fixture starts (tests/lib/ceph-up.sh) and stops."""

import image_env
import test_image_store

tap = test_image_store.tap
tap.name = "test_image_store_rados.py"
tap.fixture = image_env.RadosImageEnv

if __name__ == "__main__":
    tap.main()
