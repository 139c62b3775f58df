"""The production backends end to end: results in S3 (moto server), jobs in MongoDB (nx-27017)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from pymongo import MongoClient

from tests.oven_process import StartOven
from tests.storage.moto_s3 import BUCKET, MotoServer, start_moto
from tests.store.nx_server import NxServer, start_nx

from .grab_client import submit, wait_for_job


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def nx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NxServer]:
    server = start_nx(tmp_path_factory.mktemp("nx-27017"))
    try:
        yield server
    finally:
        server.stop()


def s3_config(moto: MotoServer, **overrides: Any) -> dict[str, dict[str, Any]]:
    return {
        "storage": {"backend": "s3"},
        "storage.s3": {
            "endpoint_url": moto.endpoint, "bucket": BUCKET, "region": "us-east-1",
            "path_style": True, "create_bucket": True, "access_key_id": "testing",
            "secret_access_key": "testing", **overrides,
        },
    }


def completed_result(oven: Any, **body: Any) -> tuple[dict[str, Any], httpx.Response]:
    accepted = submit(oven, **body)
    view = wait_for_job(oven, accepted["id"])
    assert view["state"] == "complete", view
    response = httpx.get(f"{oven.url}/grabs/{accepted['id']}/result", timeout=30)
    return view, response


def test_s3_results_answer_302_to_a_presigned_url_that_serves_the_image(
        start_oven: StartOven, moto: MotoServer) -> None:
    oven = start_oven(s3_config(moto))
    view, response = completed_result(oven, piece="still", format="png", width=230, height=130)

    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(f"{moto.endpoint}/{BUCKET}/"), location
    assert "X-Amz-Signature=" in location
    image = httpx.get(location, timeout=10)
    assert image.status_code == 200
    assert len(image.content) == view["result"]["size"]
    with Image.open(io.BytesIO(image.content)) as png:
        assert (png.format, png.size) == ("PNG", (230, 130))


def test_s3_results_answer_302_to_the_public_url_template_when_one_is_set(
        start_oven: StartOven, moto: MotoServer) -> None:
    template = f"{moto.endpoint}/{BUCKET}/{{key}}"
    oven = start_oven(s3_config(moto, public_url_template=template, acl="public-read"))
    view, response = completed_result(oven, piece="still", format="png", width=232, height=132)

    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location == template.format(key=view["result"]["storage_key"])
    image = httpx.get(location, timeout=10)
    assert image.status_code == 200
    with Image.open(io.BytesIO(image.content)) as png:
        assert png.size == (232, 132)


def test_a_grab_completes_with_jobs_kept_in_mongodb_and_is_readable_from_there(
        start_oven: StartOven, nx: NxServer) -> None:
    database = f"oven_pipeline_{uuid.uuid4().hex[:12]}"
    oven = start_oven({"store": {"backend": "mongodb", "mongodb_uri": nx.uri,
                                 "mongodb_database": database}})
    accepted = submit(oven, piece="anim", format="gif", width=160, height=90, frames=6,
                      fps=10)
    view = wait_for_job(oven, accepted["id"])
    assert view["state"] == "complete", view
    again = httpx.get(f"{oven.url}/grabs/{accepted['id']}", timeout=10).json()
    assert again["state"] == "complete" and again["result"] == view["result"]
    result = httpx.get(f"{oven.url}/grabs/{accepted['id']}/result", timeout=10)
    assert result.status_code == 200 and len(result.content) == view["result"]["size"]

    oven.stop()  # before the database goes away under it
    client: MongoClient[dict[str, Any]]
    with MongoClient(nx.uri, serverSelectionTimeoutMS=2000) as client:
        doc = client[database]["grabs"].find_one({"_id": accepted["id"]})
        assert doc is not None and doc["state"] == "complete", doc
        client.drop_database(database)
