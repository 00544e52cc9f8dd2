"""The case study's district: three campuses, eight buildings, fourteen floors."""

from responder.demo.layout import BuildingSpec, CampusSpec, FloorSpec, Room

DISTRICT = "Riverside Unified School District"


def classrooms(first: int, count: int) -> tuple[Room, ...]:
    return tuple(Room(f"Room {first + i}") for i in range(count))


def floor(name: str, level: int, north: tuple[Room, ...], south: tuple[Room, ...]) -> FloorSpec:
    return FloorSpec(name, level, north, south)


IDF = Room("IDF / Server", 0.7, camera="office", door=True)

HIGH_SCHOOL = CampusSpec(
    "Riverside High School",
    "HS",
    (
        BuildingSpec(
            "Main Building",
            "Main",
            (
                floor(
                    "1st Floor",
                    1,
                    (
                        Room("Main Office", 1.4, camera="office", door=True),
                        Room("Nurse", 0.8, camera="office", door=True),
                        Room("Counseling", 1.0, camera="office"),
                        Room("Cafeteria", 2.2, camera="cafeteria"),
                        Room("Kitchen", 1.0, door=True),
                        IDF,
                    ),
                    (
                        *classrooms(101, 2),
                        Room("Lobby", 1.4, camera="lobby"),
                        *classrooms(103, 2),
                        Room("Library", 1.8, camera="library", door=True),
                    ),
                ),
                floor(
                    "2nd Floor",
                    2,
                    (*classrooms(201, 4), Room("Computer Lab", 1.2, camera="lab", door=True)),
                    (*classrooms(205, 4), Room("Teachers' Lounge", 1.2)),
                ),
                floor(
                    "3rd Floor",
                    3,
                    classrooms(301, 5),
                    (*classrooms(306, 4), Room("Study Hall", 1.2, camera="hallway")),
                ),
            ),
            ("south", "east", "west"),
            parking="Parking Lot",
            site=(420, 330),
        ),
        BuildingSpec(
            "Gymnasium",
            "Gym",
            (
                floor(
                    "Ground Floor",
                    1,
                    (Room("Gym", 3, camera="gym"), Room("Weight Room", 1, camera="gym")),
                    (
                        Room("Boys' Locker Room", 1.2),
                        Room("Lobby", 1, camera="lobby"),
                        Room("Girls' Locker Room", 1.2),
                        Room("Coaches' Office", 0.8, camera="office", door=True),
                    ),
                ),
            ),
            ("north", "east", "west"),
            parking="Stadium Lot",
            site=(880, 300),
        ),
        BuildingSpec(
            "Science Wing",
            "Science Wing",
            (
                floor(
                    "1st Floor",
                    1,
                    (Room("Chemistry Lab", 1.5, camera="lab", door=True), *classrooms(121, 3)),
                    (
                        Room("Biology Lab", 1.5, camera="lab"),
                        Room("Prep Room", 0.8, door=True),
                        IDF,
                    ),
                ),
                floor(
                    "2nd Floor",
                    2,
                    (Room("Physics Lab", 1.5, camera="lab"), *classrooms(221, 3)),
                    classrooms(224, 4),
                ),
            ),
            ("south", "east"),
            site=(300, 640),
        ),
        BuildingSpec(
            "Performing Arts Center",
            "Arts Center",
            (
                floor(
                    "Ground Floor",
                    1,
                    (
                        Room("Auditorium", 3, camera="auditorium"),
                        Room("Stage", 1.2, camera="auditorium"),
                    ),
                    (
                        Room("Box Office", 0.8, camera="office", door=True),
                        Room("Lobby", 1.5, camera="lobby"),
                        Room("Band Room", 1.2, camera="classroom"),
                        Room("Choir Room", 1.2),
                    ),
                ),
            ),
            ("south", "west"),
            site=(820, 620),
        ),
    ),
)

MIDDLE_SCHOOL = CampusSpec(
    "Riverside Middle School",
    "MS",
    (
        BuildingSpec(
            "Main Building",
            "Main",
            (
                floor(
                    "1st Floor",
                    1,
                    (
                        Room("Main Office", 1.4, camera="office", door=True),
                        Room("Nurse", 0.8, door=True),
                        Room("Cafeteria", 2.2, camera="cafeteria"),
                        Room("Kitchen", 1.0, door=True),
                        IDF,
                    ),
                    (
                        *classrooms(101, 2),
                        Room("Lobby", 1.4, camera="lobby"),
                        *classrooms(103, 2),
                        Room("Library", 1.6, camera="library"),
                    ),
                ),
                floor(
                    "2nd Floor",
                    2,
                    (*classrooms(201, 4), Room("Computer Lab", 1.2, camera="lab", door=True)),
                    (*classrooms(205, 4), Room("Art Room", 1.2, camera="classroom")),
                ),
            ),
            ("south", "east", "west"),
            parking="Parking Lot",
            site=(450, 380),
        ),
        BuildingSpec(
            "Gymnasium",
            "Gym",
            (
                floor(
                    "Ground Floor",
                    1,
                    (Room("Gym", 3, camera="gym"),),
                    (
                        Room("Locker Rooms", 1.6),
                        Room("Lobby", 1, camera="lobby"),
                        Room("PE Office", 0.8, camera="office", door=True),
                    ),
                ),
            ),
            ("north", "east"),
            parking="Bus Loop",
            site=(900, 360),
        ),
    ),
)

ELEMENTARY = CampusSpec(
    "Riverside Elementary School",
    "ES",
    (
        BuildingSpec(
            "Main Building",
            "Main",
            (
                floor(
                    "Ground Floor",
                    1,
                    (
                        Room("Main Office", 1.4, camera="office", door=True),
                        Room("Nurse", 0.8, door=True),
                        Room("Multipurpose Room", 2.4, camera="gym"),
                        Room("Kitchen", 1.0, door=True),
                        IDF,
                    ),
                    (
                        *classrooms(101, 2),
                        Room("Lobby", 1.4, camera="lobby"),
                        *classrooms(103, 2),
                        Room("Library", 1.6, camera="library"),
                    ),
                ),
            ),
            ("south", "east", "west"),
            parking="Parking Lot",
            site=(450, 360),
        ),
        BuildingSpec(
            "Kindergarten Annex",
            "Annex",
            (
                floor(
                    "Ground Floor",
                    1,
                    (*classrooms(1, 3), Room("Playroom", 1.4, camera="classroom")),
                    (Room("Office", 0.8, camera="office", door=True), *classrooms(4, 3)),
                ),
            ),
            ("south", "north"),
            site=(880, 420),
        ),
    ),
)

CAMPUSES = (HIGH_SCHOOL, MIDDLE_SCHOOL, ELEMENTARY)
