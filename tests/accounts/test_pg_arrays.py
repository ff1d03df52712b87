"""Array literals for set-based statements: plain tokens only, read back exactly."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.services.pg_arrays import pg_int_array, pg_token_array


def test_ids_and_tokens_become_one_literal():
    assert pg_int_array([3, 17]) == "{3,17}"
    assert pg_int_array([]) == "{}"
    assert pg_token_array(["", "7K2M-9QXA-B4TZ", "ab12"]) == '{"","7K2M-9QXA-B4TZ","ab12"}'
    assert pg_token_array([]) == "{}"


@pytest.mark.parametrize("value", ['a"b', "a,b", "a}b", "a\\b", "ä", "a b"])
def test_anything_that_would_need_escaping_is_refused(value):
    with pytest.raises(ValueError):
        pg_token_array(["ok", value])


@pytest.mark.django_db
def test_postgresql_reads_the_literals_back_as_the_same_values(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::text[], %s::bigint[]", [pg_token_array(["", "AB-12"]), pg_int_array([5, 9])]
        )
        assert cursor.fetchone() == (["", "AB-12"], [5, 9])
