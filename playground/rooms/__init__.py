"""Class rooms: a presenter's room that students join by a short code, follow, and answer polls in.

`store` (the interface and the choice by `PLAYGROUND_ROOM_STORE`), `memory_store` (one process),
`redis_store` (several app processes), `room` (create, follow, publish, answer, reveal: the rules
and who may do what), `polls` (the three polls and their scoring). What it leaves out: the page
(`playground.ui.class_room`), its HTML (`playground.html.class_room`) and chart
(`playground.plots.class_room`).
"""
