"""The storage role with a data disk: a blank disk (a loop device the container sees as
Lightsail's /dev/xvdf) gets a filesystem, is mounted by UUID at the storage root, and the
media lands on it; a second run leaves the filesystem and its files alone.

Reboots are left to test_single_host: a container has no udev, so the boot-time mount of a
UUID= fstab entry cannot be exercised here (on a real host udev provides it).
"""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.e2e.conftest import TOKEN
from tests.e2e.host import booted_host, loop_device
from tests.e2e.playbook import DEPLOYMENT, converge, write_inventory
from tests.runtime.conftest import image_bytes

pytestmark = pytest.mark.needs_root  # debootstrap, systemd-nspawn, loop devices

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def disk_host(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e-disk")
    deployment = work / "deployment.yaml"
    deployment.write_text(
        DEPLOYMENT.read_text().replace("data_disk_size_gb: 0", "data_disk_size_gb: 8")
    )
    with (
        loop_device(work / "disk.img", 512) as device,
        booted_host(work, devices={device: "/dev/xvdf"}) as host,
    ):
        inventory = work / "inventory.yml"
        base = write_inventory(host, inventory, runtime_api_tokens=[TOKEN])
        first = converge(inventory, deployment=deployment)
        assert first.returncode == 0, first.output[-4000:]
        yield host, base, inventory, deployment


def test_a_blank_data_disk_is_formatted_and_mounted_by_uuid(disk_host):
    host, *_ = disk_host
    mounted = host.ssh("findmnt --noheadings --output SOURCE,FSTYPE /srv/media").stdout.split()
    assert mounted == ["/dev/xvdf", "ext4"]
    uuid = host.ssh("blkid --match-tag UUID --output value /dev/xvdf").stdout.strip()
    fstab = host.ssh("cat /etc/fstab").stdout
    assert f"UUID={uuid} /srv/media ext4 defaults,noatime,nofail 0 0" in fstab, fstab
    assert host.ssh("stat -c '%a %G' /srv/media/images").stdout.split() == ["2770", "stowage"]


def test_media_lands_on_the_disk_and_a_second_run_keeps_it(disk_host):
    host, base, inventory, deployment = disk_host
    data = image_bytes("PNG", size=(120, 80))
    with httpx.Client(base_url=base, timeout=60) as client:
        response = client.post("/api/upload/image", files={"file": ("p.png", data)}, headers=AUTH)
    assert response.status_code == 201, response.text
    upload = response.json()
    on_disk = host.ssh(f"df --output=source /srv/media/{upload['key']}").stdout.split()[-1]
    assert on_disk == "/dev/xvdf"

    uuid = host.ssh("blkid --match-tag UUID --output value /dev/xvdf").stdout.strip()
    again = converge(inventory, deployment=deployment)
    assert again.returncode == 0, again.output[-4000:]
    assert again.recap["changed"] == 0
    assert host.ssh("blkid --match-tag UUID --output value /dev/xvdf").stdout.strip() == uuid
    served = httpx.get(upload["download_url"], timeout=30)
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == upload["sha256"]
