#!/bin/bash
echo "orders reported for ${bizdate}"
