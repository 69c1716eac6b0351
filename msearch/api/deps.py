"""FastAPI dependencies: the services and the API-key checks. All ``async``: FastAPI runs
a plain function in a worker thread, a hop per dependency per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from msearch.api.security import check_api_key
from msearch.services import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def read_access(request: Request, services: ServicesDep) -> None:
    check_api_key(request, services.settings, mutating=False)


async def write_access(request: Request, services: ServicesDep) -> None:
    check_api_key(request, services.settings, mutating=True)


ReadAccess = Depends(read_access)
WriteAccess = Depends(write_access)
