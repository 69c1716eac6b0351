"""FastAPI dependencies: the services and the API-key checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from msearch.api.security import check_api_key
from msearch.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def read_access(request: Request, services: ServicesDep) -> None:
    check_api_key(request, services.settings, mutating=False)


def write_access(request: Request, services: ServicesDep) -> None:
    check_api_key(request, services.settings, mutating=True)


ReadAccess = Depends(read_access)
WriteAccess = Depends(write_access)
