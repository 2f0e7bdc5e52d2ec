"""Typed application keys, in one place."""

from __future__ import annotations

import asyncio

import jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from node.config import Config
from node.graph import RdfIndex
from node.service import Directory
from node.workers.indexer import Indexer

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", AsyncEngine)
INDEX = web.AppKey("index", RdfIndex)
INDEXER = web.AppKey("indexer", Indexer)
DIRECTORY = web.AppKey("directory", Directory)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
TASKS = web.AppKey("tasks", list[asyncio.Task[None]])
