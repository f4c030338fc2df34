#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Upload verified backups to S3 (amazon.aws connection handling) and verify every object's checksum."""

DOCUMENTATION = r"""
---
module: offsite_s3
short_description: Upload verified backups to S3 and verify each object's SHA256 checksum
description:
  - Layer 4 of the data safety protocol for S3 or an S3-compatible store. Connection options,
    credentials and their C(AWS_*) environment variables are amazon.aws's own (it uses that
    collection's C(AnsibleAWSModule)).
  - Uploads every selected verified backup (a manifest beside it whose C(verified) is true) that is
    not yet in the bucket, optionally encrypted with C(age) first, then an off-site manifest
    C(<payload>.json) (the local manifest plus an C(offsite) block with the payload's sha256, size
    and S3 checksum). The manifest is uploaded last, only after the payload verified.
  - Every object is sent with C(ChecksumAlgorithm=SHA256) and the checksum computed locally, so S3
    rejects bytes that arrive different; afterwards C(HeadObject) (C(ChecksumMode=ENABLED)) must
    return that checksum and the right size. O(verify=download) also streams every object back
    and hashes it - the only proof on stores that keep a client's checksum without checking it.
  - An object already in the bucket whose off-site manifest names the same backup and whose
    checksum verifies is not uploaded again (C(changed=false)).
  - The local backup is only read; nothing is ever deleted. A different backup of the same name in
    the bucket is a conflict and is never overwritten.
version_added: "0.1.0"
author: datasafe maintainers
options:
  bucket:
    description: The bucket. It must exist; it is never created here.
    type: str
    required: true
  prefix:
    description: Key prefix (a "directory"), for example C(lms/db1/). Give every host its own.
    type: str
    default: ""
  verify:
    description:
      - V(checksum) trusts S3's SHA256 checksum of the received bytes (server-side on AWS S3).
      - V(download) additionally re-downloads every object, new or already present, and hashes it.
    type: str
    choices: [checksum, download]
    default: checksum
  multipart_threshold:
    description: Objects larger than this many bytes are uploaded in parts (a single PUT takes at most 5 GiB).
    type: int
    default: 4294967296
  part_size:
    description: Part size in bytes for multipart uploads (at least 5 MiB; at most 10000 parts).
    type: int
    default: 134217728
  storage_class:
    description: S3 storage class of the uploaded objects (for example C(STANDARD_IA)); the bucket's default when unset.
    type: str
  allow_insecure_endpoint:
    description:
      - O(endpoint_url) with plain C(http://), or O(validate_certs=false), is refused unless the endpoint
        is on loopback (a local test server). Set true to allow it anyway (not recommended).
    type: bool
    default: false
extends_documentation_fragment:
  - datasafe.offsite
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Reads the bucket and reports in RV(would_copy) what a real run would upload; writes nothing.
  diff_mode:
    support: none
notes:
  - Moto and some S3-compatible gateways store the checksum a client sends without checking it; use
    O(verify=download) there for a real end-to-end check.
"""

EXAMPLES = r"""
- name: Upload every verified backup, encrypted, to S3
  offsite_s3:
    bucket: lab-db-backups
    prefix: lms/prod-1/
    region: eu-central-1
    backup_dir: ~/backups
    encrypt: true
    age_recipients: "{{ vault_datasafe_age_recipients }}"
    metrics_file: /var/lib/node_exporter/textfile_collector/datasafe_offsite.prom

- name: Upload the new backup to a local test server, re-downloading to verify
  offsite_s3:
    bucket: test-bucket
    endpoint_url: http://127.0.0.1:5000
    access_key: testing
    secret_key: testing
    region: us-east-1
    backups: ["{{ datasafe_backup_result.path }}"]
    verify: download
"""

RETURN = r"""
target:
  description: The target, C(s3://bucket/prefix/).
  returned: always
  type: str
  sample: s3://lab-db-backups/lms/prod-1/
copied:
  description: Backups uploaded and verified by this run (payload name, sha256, size, encrypted).
  returned: always
  type: list
  elements: dict
skipped:
  description: Backups already in the bucket and verified there (not uploaded again).
  returned: always
  type: list
  elements: dict
would_copy:
  description: In check mode, the backups a real run would upload.
  returned: always
  type: list
  elements: dict
ignored:
  description: Backups found in O(backup_dir) but not uploaded, with the reason (no manifest, not verified).
  returned: always
  type: list
  elements: dict
problems:
  description: Local backups that no longer match their manifest (the task fails when there is any).
  returned: always
  type: list
  elements: dict
pending:
  description: Selected backups not confirmed in the bucket after this run.
  returned: always
  type: list
  elements: str
bytes:
  description: Bytes uploaded by this run.
  returned: always
  type: int
encrypted:
  description: Whether payloads are encrypted with age.
  returned: always
  type: bool
metrics_file:
  description: The metrics file written, or null.
  returned: always
  type: str
stage:
  description: The stage that failed (C(check target), C(copy), C(verify copy), C(encrypt), C(check local backups)).
  returned: failure
  type: str
"""

from ansible.module_utils.datasafe import modulekit, offsite, runner, specs
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

MIN_PART = 5 * 1024 * 1024
endpoint_problem = offsite.endpoint_problem  # kept importable for the tests


def main():
    argument_spec = specs.spec(specs.OFFSITE)
    argument_spec.update(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default=""),
        verify=dict(type="str", choices=["checksum", "download"], default="checksum"),
        multipart_threshold=dict(type="int", default=4 * 1024**3),
        part_size=dict(type="int", default=128 * 1024**2),
        storage_class=dict(type="str"),
        allow_insecure_endpoint=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    problem = endpoint_problem(p["endpoint_url"], p["validate_certs"], p["allow_insecure_endpoint"])
    if problem:
        module.fail_json(msg="offsite_s3: " + problem)
    if p["part_size"] < MIN_PART or p["multipart_threshold"] < MIN_PART:
        module.fail_json(
            msg="offsite_s3: part_size and multipart_threshold must be at least %d bytes (5 MiB), "
            "S3's smallest part" % MIN_PART
        )
    if p["multipart_threshold"] > 5 * 1024**3:
        module.fail_json(msg="offsite_s3: multipart_threshold above 5 GiB: S3 takes at most 5 GiB in one PUT")

    def make_target(run):
        try:
            client = module.client("s3")
        except Exception as exc:  # botocore/boto3 raise many classes for a bad configuration
            raise offsite.OffsiteError("check target", "cannot make an S3 client: %s" % exc) from exc
        target = offsite.S3Target(
            client,
            p["bucket"],
            prefix=p["prefix"],
            verify=p["verify"],
            multipart_threshold=p["multipart_threshold"],
            part_size=p["part_size"],
            storage_class=p["storage_class"],
            endpoint_url=p["endpoint_url"],
        )
        target.check_bucket()
        return target

    prefix = p["prefix"].strip("/")
    label = "s3://%s/%s" % (p["bucket"], prefix + "/" if prefix else "")
    run = runner.for_module(module)
    modulekit.finish(
        module,
        lambda: offsite.execute(p, make_target, label, module.check_mode, run, module.get_bin_path, module.warn),
        None,
        (offsite.Failed,),
    )


if __name__ == "__main__":
    main()
