"""The OCI state document (runtime.md "State", schema state-schema.json)."""

from typing import Annotated, Literal

from pydantic import Field

from ocipy.spec._base import OciVersion, Opt, SpecModel, StrMap

# runtime.md lets runtimes add statuses (runc's "paused"); the official schema does not, and the model follows it.
Status = Literal["creating", "created", "running", "stopped"]


class State(SpecModel):
    oci_version: OciVersion = Field(alias="ociVersion")
    id: str
    status: Status
    pid: Opt[Annotated[int, Field(ge=0)]] = None
    bundle: str
    annotations: Opt[StrMap] = None
